from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from . import previews, services
from .models import Comparison, OutboxMessage, Photo, StagedUpload, UserQuota


class ComparisonInline(admin.TabularInline):
    model = Comparison
    extra = 0
    can_delete = False
    fields = ("fmt", "bytes", "quality", "width", "height", "scale", "fits", "note")
    readonly_fields = fields


class StagedUploadInline(admin.StackedInline):
    model = StagedUpload
    extra = 0
    can_delete = False
    fields = ("size", "sha256", "created_at")  # never the bytes themselves
    readonly_fields = fields


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "owner",
        "status",
        "dimensions",
        "original_size",
        "latent_bytes",
        "bpp",
        "attempts",
        "created_at",
    )
    list_filter = ("status", "size", "original_format", "codec_model")
    search_fields = ("title", "owner__username", "id")
    date_hierarchy = "created_at"
    inlines = [ComparisonInline, StagedUploadInline]
    actions = ["requeue", "purge_preview_cache"]
    readonly_fields = [f.name for f in Photo._meta.fields] + ["view_on_site_link"]
    fieldsets = (
        (None, {"fields": ("id", "view_on_site_link", "owner", "title", "status", "error")}),
        ("Rate", {"fields": ("size", "target_bpp", "target_bytes")}),
        (
            "Original (not stored)",
            {"fields": ("original_bytes", "original_format", "original_width", "original_height")},
        ),
        (
            "Latent",
            {
                "fields": (
                    "latent",
                    "latent_bytes",
                    "latent_bpp",
                    "latent_sha256",
                    "codec_model",
                    "codec_info",
                    "fidelity_min",
                    "fidelity_mean",
                    "fidelity_floor_met",
                )
            },
        ),
        (
            "Worker",
            {
                "fields": (
                    "attempts",
                    "encode_seconds",
                    "created_at",
                    "updated_at",
                    "encoding_started_at",
                    "ready_at",
                )
            },
        ),
    )

    def has_add_permission(self, request) -> bool:
        return False  # photos come in through the upload form only

    @admin.display(description="size")
    def dimensions(self, obj: Photo) -> str:
        return f"{obj.original_width}×{obj.original_height}"

    @admin.display(description="original", ordering="original_bytes")
    def original_size(self, obj: Photo) -> str:
        return filesizeformat(obj.original_bytes)

    @admin.display(description="bpp", ordering="latent_bpp")
    def bpp(self, obj: Photo) -> str:
        return f"{obj.latent_bpp:.3f}" if obj.latent_bpp is not None else "–"

    @admin.display(description="page")
    def view_on_site_link(self, obj: Photo) -> str:
        return format_html('<a href="{}">open photo page</a>', reverse("gallery:detail", args=[obj.pk]))

    @admin.action(description="Re-queue encoding (photos not ready that still have their staged original)")
    def requeue(self, request, queryset):
        n = 0
        for photo in queryset.exclude(status=Photo.Status.READY).filter(staged__isnull=False):
            Photo.objects.filter(pk=photo.pk).update(status=Photo.Status.PENDING, error="")
            n += services.enqueue_encode(photo.pk)
        self.message_user(request, f"{n} photo(s) re-queued.", messages.SUCCESS)

    @admin.action(description="Purge preview cache files")
    def purge_preview_cache(self, request, queryset):
        files = total = 0
        for photo in queryset:
            f, b = previews.purge(photo.pk)
            files, total = files + f, total + b
        self.message_user(request, f"Removed {files} preview file(s), {filesizeformat(total)}.")


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ("photo", "fmt", "bytes", "quality", "width", "height", "scale", "fits")
    list_filter = ("fmt", "fits")
    readonly_fields = [f.name for f in Comparison._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StagedUpload)
class StagedUploadAdmin(admin.ModelAdmin):
    list_display = ("photo", "size", "created_at")
    fields = ("photo", "size", "sha256", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Task messages waiting to be published (the broker was unreachable); the relay sends them."""

    list_display = ("task", "args", "created_at", "attempts", "last_error")
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    """Per-user upload quotas (gallery/quotas.py); a blank field uses the site-wide setting."""

    list_display = ("user", "uploads_per_hour", "bytes_per_day")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
