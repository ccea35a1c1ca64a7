from django.urls import path

from . import views

app_name = "gallery"

urlpatterns = [
    path("", views.photo_list, name="list"),
    path("upload/", views.upload, name="upload"),
    path("photos/<uuid:pk>/", views.photo_detail, name="detail"),
    path("photos/<uuid:pk>/status.json", views.photo_status, name="status"),
    path("photos/<uuid:pk>/delete/", views.photo_delete, name="delete"),
    path("photos/<uuid:pk>/preview/<slug:spec>/", views.preview, name="preview"),
    path("photos/<uuid:pk>/compare/<slug:fmt>/", views.comparison, name="comparison"),
    path("photos/<uuid:pk>/latent/", views.latent_download, name="latent"),
    path("stats/", views.storage_stats, name="stats"),
    path("healthz", views.healthz, name="healthz"),
]
