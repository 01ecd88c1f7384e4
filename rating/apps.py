from django.apps import AppConfig


class RatingConfig(AppConfig):
    name = "rating"
    verbose_name = "Rating"

    def ready(self) -> None:
        """Rating extends the reader app below it, which never imports it: raters may see the
        images of their items' cases, and a rater's home page lists their campaigns."""
        from reader import access, views
        from trial.models import Role

        from .queries import rater_campaigns, rater_may_see_case

        access.image_access_rules.append(rater_may_see_case)
        views.home_extras.append(
            lambda member: {"rating_campaigns": rater_campaigns(member)}
            if member.role == Role.RATER else {})
