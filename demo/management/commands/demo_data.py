"""`python manage.py demo_data OUT [--imagettes N] [--scenes N] [--tracks N] --seed S`: synthetic data in the real
formats."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Write synthetic Sentinel-1 WV imagettes (SAFE folders and zips, GeoTIFF, PNG, or the TenGeoP-SARwv "
            "tree) with a ground_truth.csv sidecar, and with --scenes N synthetic EW GRD sea-ice scenes (SAFE "
            "folders) under OUT/scenes/ with their truth under OUT/scenes/.truth/, and with --tracks N synthetic "
            "SARAL/AltiKa passes (SGDR-like NetCDF, 40 Hz waveforms) crossing those scenes (the same seed and "
            "scene size, written now or by another run) under OUT/tracks/, truth under OUT/tracks/.truth/; the "
            "platform never reads the truth while people label.")

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)
        parser.add_argument("--imagettes", type=int, default=100, help="WV imagettes to write (0: none)")
        parser.add_argument("--scenes", type=int, default=0, help="EW GRD scenes to write under OUT/scenes/")
        parser.add_argument("--tracks", type=int, default=0,
                            help="SARAL/AltiKa passes to write under OUT/tracks/, crossing the scenes of this seed")
        parser.add_argument("--track-scenes", type=int, default=0,
                            help="how many of the seed's scenes the tracks cross (0: --scenes, else 3)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--layout", choices=["mixed", "tengeop"], default="mixed")
        parser.add_argument("--size", type=int, default=256, help="imagette side in pixels (multiple of 4)")
        parser.add_argument("--scene-size", type=int, default=2000,
                            help="EW scene side in pixels (the ~410 km swath; real products are ~10 000 at 40 m)")
        parser.add_argument("--zip-scenes", action="store_true",
                            help="write the scenes as zips (NAME.zip holding NAME.SAFE/)")

    def handle(self, *args, out: Path, imagettes: int, scenes: int, seed: int, layout: str, size: int,
               scene_size: int, zip_scenes: bool, tracks: int = 0, track_scenes: int = 0, **options):
        from demo.synthetic import write_demo_imagettes, write_demo_scenes
        from demo.synthetic.altimetry import write_demo_tracks

        if min(imagettes, scenes, tracks, track_scenes) < 0:
            raise CommandError("--imagettes, --scenes and --tracks cannot be negative")
        if imagettes < 1 and scenes < 1 and tracks < 1:
            raise CommandError("nothing to write: ask for at least one imagette, scene or track")
        if out.exists() and any(out.iterdir()):
            raise CommandError(f"{out} exists and is not empty; choose a new folder")
        try:
            if imagettes:
                truth = write_demo_imagettes(out, imagettes, seed=seed, layout=layout, size=size)
                done = f"wrote {imagettes} imagettes ({layout}) to {out}; truth: {truth}"
                self.stdout.write(self.style.SUCCESS(done))
            if scenes:
                written = write_demo_scenes(out, scenes, seed=seed, size=scene_size, zipped=zip_scenes)
                self.stdout.write(self.style.SUCCESS(
                    f"wrote {len(written)} EW GRD scenes ({scene_size} px) to {out / 'scenes'}; "
                    f"truth: {out / 'scenes' / '.truth'}"))
            if tracks:
                crossed = track_scenes or scenes or 3
                written = write_demo_tracks(out, tracks, seed=seed, scenes=crossed, scene_size=scene_size)
                self.stdout.write(self.style.SUCCESS(
                    f"wrote {len(written)} SARAL/AltiKa passes crossing {min(crossed, tracks)} scenes (seed {seed}, "
                    f"{scene_size} px) to {out / 'tracks'}; truth: {out / 'tracks' / '.truth'}"))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
