"""Rater pages: ``/rate/<trial>/<campaign>/`` and ``/rate/<trial>/<campaign>/<code>/``
(names ``rating:rate`` and ``rating:rate-item``). Items are addressed by opaque codes only."""

from django.urls import path

from . import views

app_name = "rating"
urlpatterns = [
    path("rate/<slug:trial_slug>/<int:campaign>/", views.rating_list_page, name="rate"),
    path("rate/<slug:trial_slug>/<int:campaign>/<str:code>/", views.rating_item_page,
         name="rate-item"),
]
