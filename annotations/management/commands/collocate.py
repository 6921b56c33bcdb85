"""`python manage.py collocate [TRACK_ID ...|--all] [--window-h H] [--threshold-m M]`: (re)compute the automatic
lead labels of tracks from the scenes near them (annotations.services.collocation), printing per track the scenes
used and the waveforms per label. Run it after lead polygons were drawn or edited on scenes the tracks cross."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotations.models import Track
from annotations.services.collocation import CollocationError, track_collocate


class Command(BaseCommand):
    help = "Label tracks' waveforms lead / not lead / unknown from the scenes collocated with them."

    def add_arguments(self, parser):
        parser.add_argument("track_ids", nargs="*", type=int, metavar="TRACK_ID")
        parser.add_argument("--all", action="store_true", help="every track")
        parser.add_argument("--window-h", type=float, help="scenes within this many hours (default: the setting)")
        parser.add_argument("--threshold-m", type=float, help="lead distance, metres (default: the setting)")

    def handle(self, *args, track_ids: list[int], all: bool = False, window_h: float | None = None,  # noqa: A002
               threshold_m: float | None = None, **options):
        if bool(track_ids) == bool(all):
            raise CommandError("name track ids, or --all (not both)")
        window_s = None if window_h is None else window_h * 3600.0
        tracks = Track.objects.order_by("pk")
        if track_ids:
            tracks = tracks.filter(pk__in=track_ids)
            missing = sorted(set(track_ids) - set(tracks.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"no such track: {', '.join(map(str, missing))}")
        failed = 0
        for track in tracks.iterator():
            try:
                row = track_collocate(track, window_s=window_s, threshold_m=threshold_m)
            except CollocationError as exc:
                raise CommandError(str(exc)) from None  # the same for every track: stop at the first
            except FileNotFoundError as exc:
                failed += 1
                self.stderr.write(f"track {track.pk} ({track.key}): {exc}")
                continue
            scenes = ", ".join(f"{s['key']} (lag {s['lag_s']:+.0f} s, {s['waveforms']} waveforms)"
                               for s in row.scenes) or "no scene"
            counts = row.counts
            self.stdout.write(f"track {track.pk} ({track.key}) v{row.version}: {scenes}; lead {counts['lead']}, "
                              f"not lead {counts['not_lead']}, unknown {counts['unknown']}")
        if failed:
            raise CommandError(f"{failed} track(s) could not be collocated")
