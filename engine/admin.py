from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from engine import models


@admin.register(models.User)
class EngineUserAdmin(UserAdmin):
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Role", {"fields": ("role",)}))
    list_display = ("username", "email", "role", "is_staff")


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "phase", "annotation_fps", "created_at")
    inlines = [MembershipInline]


@admin.register(models.Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "status", "frame_count", "width", "height", "created_at")
    list_filter = ("status", "project")
    search_fields = ("name",)


@admin.register(models.Masklet)
class MaskletAdmin(admin.ModelAdmin):
    list_display = ("video", "object_id", "kind", "status", "updated_at")
    list_filter = ("kind", "status")


@admin.register(models.MaskletRevision)
class MaskletRevisionAdmin(admin.ModelAdmin):
    list_display = ("masklet", "number", "author", "created_at")
    readonly_fields = ("frames",)


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress", "attempt", "worker", "created_at")
    list_filter = ("kind", "status")


for _model in (
    models.Membership,
    models.Assignment,
    models.InteractionEvent,
    models.Review,
    models.ModelVersion,
    models.Round,
    models.DatasetSnapshot,
    models.DraftEdit,
    models.ModelSession,
    models.ModelPromotion,
    models.RoundSettings,
    models.QualityModel,
    models.QualitySettings,
    models.RevisionQuality,
):
    admin.site.register(_model)
