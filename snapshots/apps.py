from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "snapshots"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The live stream's receivers of the app's signals connect once the models exist.
        from snapshots.live import announcements  # noqa: F401, PLC0415
