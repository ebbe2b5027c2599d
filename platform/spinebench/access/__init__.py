"""The access policy: the only place that answers "may this identity do this to that object" for the pages, the API
and the Celery tasks alike (docs/architecture.md). It sits between two layers: it reads every app's models and
services, and every app's views, API viewsets and tasks ask it; models and services never import it.

One module per kind of object (`challenges`, `submissions`, `datasets`, `teams`, `scores`), plus `shortcuts` for
views. Import the rules from here: `from spinebench.access import can_view_phase`.
"""

from .challenges import (
    can_download_phase_inputs,
    can_view_phase,
    phase_labels_public,
    visible_challenges,
    visible_phases,
)
from .datasets import can_download_dataset
from .evaluation import (
    can_cancel_submission,
    can_manage_phase_evaluation,
    can_moderate_submission,
    can_monitor_submissions,
    can_rescore_phase,
    can_reveal_scores,
    can_see_private_part,
    can_see_scores,
)
from .organizers import (
    can_create_challenge,
    can_manage_challenge,
    can_run_organizer_job,
    can_view_bundle_import,
    get_managed_challenge,
    get_managed_phase,
    managed_challenges,
)
from .scores import scores_visible
from .shortcuts import get_visible_phase
from .submissions import (
    can_choose_submissions,
    can_compare_submission,
    can_edit_method_card,
    can_see_case_results,
    can_see_ground_truth_plots,
    can_see_phase_ground_truth_plots,
    can_see_private_details,
    can_view_submission,
)
from .teams import (
    can_answer_invitation,
    can_lead_team,
    can_see_team_invitations,
    can_set_team_cap,
    can_view_team,
    is_team_member,
)
from .uploads import can_use_upload_session

__all__ = [
    "can_answer_invitation",
    "can_lead_team",
    "can_see_team_invitations",
    "can_set_team_cap",
    "can_view_team",
    "is_team_member",
    "scores_visible",
    "can_choose_submissions",
    "can_compare_submission",
    "can_edit_method_card",
    "can_cancel_submission",
    "can_moderate_submission",
    "can_monitor_submissions",
    "can_rescore_phase",
    "can_reveal_scores",
    "can_see_private_part",
    "can_see_scores",
    "can_create_challenge",
    "can_manage_challenge",
    "can_run_organizer_job",
    "can_view_bundle_import",
    "get_managed_challenge",
    "get_managed_phase",
    "managed_challenges",
    "can_download_dataset",
    "can_download_phase_inputs",
    "can_manage_phase_evaluation",
    "can_see_case_results",
    "can_see_ground_truth_plots",
    "can_see_phase_ground_truth_plots",
    "can_see_private_details",
    "can_use_upload_session",
    "can_view_phase",
    "can_view_submission",
    "get_visible_phase",
    "phase_labels_public",
    "visible_challenges",
    "visible_phases",
]
