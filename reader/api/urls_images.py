"""``/api/images/``: the viewer's pixels, preview and metadata, for whoever may see the case's
images (``reader.access``)."""

from django.urls import path

from .images import ImagePixelsView, ImagePreviewView, ImageViewerView

urlpatterns = [
    path("<int:pk>/pixels/", ImagePixelsView.as_view(), name="image-pixels"),
    path("<int:pk>/preview/", ImagePreviewView.as_view(), name="image-preview"),
    path("<int:pk>/viewer/", ImageViewerView.as_view(), name="image-viewer"),
]
