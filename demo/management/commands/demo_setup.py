"""Everything `make demo` needs in the database: one user of each role, the demo data a user starting from the
published dataset would have (1 000 imagettes imported with their labels in the TenGeoP-SARwv layout, 300 more
ingested unlabelled for the crowd), and a simulated crowd that has labelled part of those 300 through the queue,
with gold items and a consensus run, so that Curation and Overview show real figures on the first visit.
Migrates the database first. Idempotent: a second start adds nothing."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q


class Command(BaseCommand):
    help = "Prepare the demo: users of each role, demo imagettes and a simulated crowd (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--labelled", type=int, default=1000, help="imagettes imported with labels")
        parser.add_argument("--unlabelled", type=int, default=300, help="imagettes for the crowd")
        parser.add_argument("--crowd-items", type=int, default=200,
                            help="items the simulated crowd labels to their k votes (0: no simulated crowd)")
        parser.add_argument("--gold", type=int, default=24, help="imported imagettes made gold for the crowd")
        parser.add_argument("--scenes", type=int, default=3,
                            help="EW scenes written now and ingested by the worker once it starts (0: none)")
        parser.add_argument("--scene-size", type=int, default=2000, help="their side in pixels")
        parser.add_argument("--tracks", type=int, default=4,
                            help="SARAL/AltiKa passes crossing the scenes, ingested with them (0: none)")
        parser.add_argument("--workers", type=int, default=0,
                            help="processes writing and ingesting the demo data (0: one per usable CPU, up to 4)")

    def handle(self, *args, labelled: int, unlabelled: int, crowd_items: int, gold: int, workers: int, scenes: int,
               scene_size: int, tracks: int = 4, **options):
        from annotations.models import Imagette, Scene
        from demo.crowd import (
            CROWD,
            consensus_imports_warm,
            crowd_password,
            crowd_password_hashes,
            crowd_pending,
            crowd_simulate,
        )
        from demo.data import demo_data_ensure, demo_scenes_write, demo_sets

        if min(labelled, unlabelled, crowd_items, gold, workers, scenes, tracks) < 0:
            raise CommandError("counts must not be negative")
        # The schema first, in this process (`make demo` starts one Python process fewer: ~2-5 s on two cores).
        call_command("migrate", interactive=False, verbosity=0)
        call_command("create_demo_users", stdout=self.stdout)
        root = Path(settings.VAR_DIR) / "demo"
        if Imagette.objects.exists() and not root.exists():
            self.stdout.write(f"{Imagette.objects.count()} imagettes are there already, not the demo's: "
                              "no demo data and no simulated crowd added.")
            return
        simulate = crowd_items > 0 and crowd_pending()
        hashes = {}
        written = []  # the scenes' future
        with ThreadPoolExecutor(2, thread_name_prefix="demo") as threads:

            def meanwhile() -> None:
                # While the worker processes write and ingest: the crowd accounts' password hashes (PBKDF2 frees
                # the GIL) and the consensus imports, which the crowd needs next.
                if crowd_items > 0:
                    hashes.update(crowd_password_hashes(threads))
                if simulate:
                    threads.submit(consensus_imports_warm)
                if scenes:
                    written.append(threads.submit(demo_scenes_write, root=root, count=scenes, size=scene_size,
                                                  tracks=tracks))

            truth_files = demo_data_ensure(root=root, sets=demo_sets(labelled=labelled, unlabelled=unlabelled),
                                           workers=workers or None, report=self.stdout.write, started=meanwhile)
            crowd = (crowd_simulate(truth_files=truth_files, items=crowd_items, gold=gold, password_hashes=hashes)
                     if crowd_items > 0 else None)
        if written:
            self._scenes_queue(*written[0].result(), Scene)
        if crowd_items > 0:
            self.stdout.write("Simulated crowd, ordinary annotators (username / password / role / how they label):")
            for persona in CROWD:
                self.stdout.write(f"  {persona.username:<10} {crowd_password(persona.username):<15} annotator  "
                                  f"{persona.style}")
        counts = Imagette.objects.aggregate(
            imported=Count("id", filter=Q(label_source=Imagette.LabelSource.IMPORTED)),
            consensus=Count("id", filter=Q(label_source=Imagette.LabelSource.CONSENSUS)),
            waiting=Count("id", filter=Q(queue_state=Imagette.QueueState.OPEN)),
        )
        self.stdout.write(self.style.SUCCESS(
            f"Demo data: {counts['imported']} imagettes imported with their labels, {counts['consensus']} labelled "
            f"by the crowd's consensus, {counts['waiting']} waiting for the crowd. "
            f"Ground truth (never read by the platform): {root}/**/ground_truth.csv"
        ))
        if crowd is not None:
            self.stdout.write(self.style.SUCCESS(
                f"Simulated crowd: {crowd.total} votes ({crowd.gold_votes} on gold items) from {len(crowd.votes)} "
                f"annotators; {crowd.consensus.get('message', '')}."
            ))
        elif simulate:
            self.stdout.write("No simulated crowd: the queue holds imagettes the demo's ground truth does not know.")

    def _scenes_queue(self, folder: Path, chart: Path, tracks: Path | None, scene_model) -> None:
        """The demo scenes, their ice chart, the leads the demo's people trace on them and the tracks crossing them
        go to the worker as one job (demo.tasks: the platform is up meanwhile; the scenes appear on the polar map
        as the job takes them in, the tracks after them, collocated), unless they are in already."""
        from jobs.models import Job
        from jobs.services import job_submit

        paths = [str(folder), str(chart), *([str(tracks)] if tracks is not None else [])]
        pending = Job.objects.filter(kind="demo_ingest", params__paths=paths,
                                     state__in=[Job.State.QUEUED, Job.State.RUNNING]).first()
        if scene_model.objects.exists():
            self.stdout.write(f"Scenes: {scene_model.objects.count()} on the polar map (/scenes/).")
        elif pending is not None:  # queued by an earlier start, the worker has not taken it yet
            self.stdout.write(f"Scenes: the demo's EW scenes are queued for ingest (job {pending.pk}).")
        else:
            job = job_submit(kind="demo_ingest", params={"paths": paths, "leads": str(folder / ".truth")},
                             reason="the demo's Extra Wide scenes, their ice chart and leads, and the tracks")
            what = f" and {len(list(tracks.glob('*.nc')))} altimetry tracks" if tracks is not None else ""
            self.stdout.write(f"Scenes: the demo's EW scenes{what} are queued for ingest (job {job.pk}); they appear "
                              "on the polar map (/scenes/) within a minute of the worker's start, with the ice chart "
                              "and the leads a demo annotator traced.")
        self.stdout.write(f"The ice chart of them (imported by that job): {chart}")
