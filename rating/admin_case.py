"""The case page's "Ratings" panel (registered on ``trial``'s ``CaseAdmin`` from
``RatingConfig.ready``): per campaign, how many of this case's items were given to raters and
how many ratings are in. Counts only, never a rating or which report is which.

Read-only HTML; no admin module is imported here (``apps`` registers the panel).
"""

from __future__ import annotations

from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from trial.models import Case

from .models import Campaign, Item, RaterItem, Rating


def ratings_panel(case: Case) -> str:
    """One row per campaign rating this case's reports: items, given to raters, submitted."""
    items = dict(Item.objects.filter(case=case).order_by().values_list("campaign")
                 .annotate(n=Count("pk")))
    if not items:
        return "Not in a rating campaign."
    given = dict(RaterItem.objects.filter(item__case=case).order_by().values_list("campaign")
                 .annotate(n=Count("pk")))
    submitted = dict(Rating.objects.filter(rater_item__item__case=case).order_by()
                     .values_list("rater_item__campaign").annotate(n=Count("pk")))
    campaigns = Campaign.objects.filter(pk__in=items).order_by("name")
    body = format_html_join(
        "", '<tr data-campaign="{}"><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
            '<td class="ratings-progress">{} of {}</td></tr>',
        ((c.pk, reverse("admin:rating_campaign_change", args=[c.pk]), c.name,
          c.get_status_display(), items[c.pk], given.get(c.pk, 0), submitted.get(c.pk, 0),
          given.get(c.pk, 0)) for c in campaigns))
    return format_html('<table class="case-panel case-ratings"><thead><tr><th>campaign</th>'
                       "<th>status</th><th>items of this case</th><th>given to raters</th>"
                       "<th>ratings submitted</th></tr></thead><tbody>{}</tbody></table>", body)
