"""Videos imported without frames before the ``no_frames`` status existed were marked ready:
mark them ``no_frames`` and hold their submitted or needs-fix masklets as drafts (listed in
``metadata["held_masklets"]``) until their video file is attached, as new imports do."""

from django.db import migrations

HELD = ("submitted", "needs_fix")


def forwards(apps, schema_editor):
    Video = apps.get_model("engine", "Video")
    Masklet = apps.get_model("engine", "Masklet")
    for video in Video.objects.filter(status="ready", metadata__has_frames=False):
        held = dict(video.metadata.get("held_masklets") or {})
        for masklet in Masklet.objects.filter(video=video, status__in=HELD):
            held[str(masklet.pk)] = masklet.status
        Masklet.objects.filter(pk__in=[int(k) for k in held]).update(status="draft")
        metadata = {**video.metadata}
        if held:
            metadata["held_masklets"] = held
        Video.objects.filter(pk=video.pk).update(
            status="no_frames", progress=0.0, metadata=metadata
        )


def backwards(apps, schema_editor):
    Video = apps.get_model("engine", "Video")
    Masklet = apps.get_model("engine", "Masklet")
    for video in Video.objects.filter(status="no_frames"):
        held = dict(video.metadata.get("held_masklets") or {})
        for masklet_id, status in held.items():
            Masklet.objects.filter(pk=int(masklet_id), status="draft").update(status=status)
        metadata = {k: v for k, v in video.metadata.items() if k != "held_masklets"}
        Video.objects.filter(pk=video.pk).update(status="ready", progress=1.0, metadata=metadata)


class Migration(migrations.Migration):
    dependencies = [("engine", "0008_video_no_frames_status")]

    operations = [migrations.RunPython(forwards, backwards)]
