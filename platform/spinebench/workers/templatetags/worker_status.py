"""`{% load worker_status %}{% queue_status phase %}`: the note an algorithm phase shows while no live worker serves
its container queue (renders nothing otherwise). A tag, so any page can show it without its view's help."""

from django import template

from spinebench.workers.services import phase_unserved_message

register = template.Library()


@register.inclusion_tag("workers/_queue_status.html")
def queue_status(phase):
    return {"phase": phase, "unserved_message": phase_unserved_message(phase)}
