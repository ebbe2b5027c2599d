from django.contrib import admin

from .models import Invitation, Membership, Team, TeamSettings


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    readonly_fields = ["user", "challenge", "joined"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "challenge", "leader", "created"]
    list_filter = ["challenge"]
    search_fields = ["name", "memberships__user__username"]
    inlines = [MembershipInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["team", "invitee", "invited_by", "status", "created"]
    list_filter = ["status"]


@admin.register(TeamSettings)
class TeamSettingsAdmin(admin.ModelAdmin):
    list_display = ["challenge", "max_team_size"]
