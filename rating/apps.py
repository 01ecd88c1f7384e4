from django.apps import AppConfig


class RatingConfig(AppConfig):
    name = "rating"
    verbose_name = "Rating"

    def ready(self) -> None:
        """Rating extends the reader app below it, which never imports it: raters may see the
        images of their items' cases, and a rater's home page lists their campaigns; the case's
        admin page (``trial``) shows its ratings' progress."""
        from reader import access, views
        from trial.admin.cases import CaseAdmin
        from trial.models import Role

        from .admin_case import ratings_panel
        from .queries import rater_campaigns, rater_may_see_case

        access.image_access_rules.append(rater_may_see_case)
        views.home_extras.append(
            lambda member: {"rating_campaigns": rater_campaigns(member)}
            if member.role == Role.RATER else {})
        CaseAdmin.add_panel("ratings", "Ratings", ratings_panel,
                            description="rating campaigns")
