from django.urls import path

from . import accounts, album_views, bulk_views, health, views

app_name = "gallery"

urlpatterns = [
    path("", views.photo_list, name="list"),
    path("upload/", views.upload, name="upload"),
    path("photos/bulk/", bulk_views.bulk, name="bulk"),
    path("photos/zip/<str:key>/", bulk_views.zip_download, name="zip"),
    path("photos/<uuid:pk>/", views.photo_detail, name="detail"),
    path("photos/<uuid:pk>/status.json", views.photo_status, name="status"),
    path("photos/<uuid:pk>/delete/", views.photo_delete, name="delete"),
    path("photos/<uuid:pk>/sharing/", views.photo_sharing, name="sharing"),
    path("photos/<uuid:pk>/title/", views.photo_title, name="title"),
    path("photos/<uuid:pk>/album/", album_views.photo_album, name="photo-album"),
    path("photos/<uuid:pk>/preview/<slug:spec>/", views.preview, name="preview"),
    path("photos/<uuid:pk>/compare/<slug:fmt>/", views.comparison, name="comparison"),
    path("photos/<uuid:pk>/latent/", views.latent_download, name="latent"),
    path("photos/<uuid:pk>/download/<slug:fmt>/", views.decoded_download, name="download"),
    path("albums/", album_views.album_list, name="albums"),
    path("albums/<uuid:pk>/", album_views.album_detail, name="album"),
    path("albums/<uuid:pk>/sharing/", album_views.album_sharing, name="album-sharing"),
    path("albums/<uuid:pk>/delete/", album_views.album_delete, name="album-delete"),
    path("s/<str:token>/", views.share, name="share"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("stats/", views.storage_stats, name="stats"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
