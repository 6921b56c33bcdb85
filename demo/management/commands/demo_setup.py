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
from django.db import connection
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
                            help="EW scenes the worker writes and ingests once it starts (0: none)")
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
            CrowdReport,
            consensus_imports_warm,
            crowd_password,
            crowd_pending,
            crowd_simulate,
        )
        from demo.data import DemoSet, demo_data_ensure, demo_sets

        if min(labelled, unlabelled, crowd_items, gold, workers, scenes, tracks) < 0:
            raise CommandError("counts must not be negative")
        root = Path(settings.VAR_DIR) / "demo"
        foreign = _imagettes_not_the_demos(root, Imagette)
        if foreign:
            self._prepare()
            self.stdout.write(f"{foreign} imagettes are there already, not the demo's: "
                              "no demo data and no simulated crowd added.")
            return
        sets = demo_sets(labelled=labelled, unlabelled=unlabelled)
        truth_files = [root / s.name / "ground_truth.csv" for s in sets]
        crowd: list[CrowdReport | None] = []  # once it has run
        ingested: set[str] = set()

        def crowd_once(demo_set: DemoSet | None = None) -> None:
            # The crowd votes on the crowd's set, with gold among the imported imagettes: it starts as soon as the
            # crowd's set and one imported set are in, in this process, while the worker processes ingest the rest.
            if demo_set is not None:
                ingested.add(demo_set.layout)
            if crowd or crowd_items <= 0 or (demo_set is not None and not {"mixed", "tengeop"} <= ingested):
                return
            crowd.append(crowd_simulate(truth_files=truth_files, items=crowd_items, gold=gold))

        with ThreadPoolExecutor(1, thread_name_prefix="demo") as threads:

            def meanwhile() -> None:
                # While the worker processes ingest: the consensus imports, which the crowd needs.
                if crowd_items > 0 and crowd_pending():
                    threads.submit(consensus_imports_warm)

            # The worker processes write the files while this one migrates (`prepare`), then ingest them.
            demo_data_ensure(root=root, sets=sets, workers=workers or None, report=self.stdout.write,
                             started=meanwhile, prepare=self._prepare, ingested=crowd_once)
            crowd_once()  # when it could not start before (nothing to ingest, no imported set)
        crowd_report = crowd[0] if crowd else None
        if scenes:
            self._scenes_queue(root, scenes=scenes, size=scene_size, tracks=tracks, scene_model=Scene)
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
        if crowd_report is not None:
            self.stdout.write(self.style.SUCCESS(
                f"Simulated crowd: {crowd_report.total} votes ({crowd_report.gold_votes} on gold items) from "
                f"{len(crowd_report.votes)} annotators; {crowd_report.consensus.get('message', '')}."
            ))
        elif crowd_items > 0 and crowd_pending():
            self.stdout.write("No simulated crowd: the queue holds imagettes the demo's ground truth does not know.")

    def _prepare(self) -> None:
        """The schema, in this process (`make demo` starts one Python process fewer: ~2-5 s on two cores), and the
        demo users."""
        call_command("migrate", interactive=False, verbosity=0)
        call_command("create_demo_users", stdout=self.stdout)

    def _scenes_queue(self, root: Path, *, scenes: int, size: int, tracks: int, scene_model) -> None:
        """The demo scenes, their ice chart, the leads the demo's people trace on them and the tracks crossing them
        go to the worker as one job (demo.tasks), which writes them first: the platform is up meanwhile, and the
        scenes appear on the polar map as the job takes them in, the tracks after them, collocated. Unless they
        are in already, or queued by an earlier start."""
        from demo.data import demo_scenes_paths
        from jobs.models import Job
        from jobs.services import job_submit

        folder, chart, track_folder = demo_scenes_paths(root)
        paths = [str(folder), str(chart), *([str(track_folder)] if tracks else [])]
        pending = Job.objects.filter(kind="demo_ingest", params__paths=paths,
                                     state__in=[Job.State.QUEUED, Job.State.RUNNING]).first()
        if scene_model.objects.exists():
            self.stdout.write(f"Scenes: {scene_model.objects.count()} on the polar map (/scenes/).")
        elif pending is not None:  # queued by an earlier start, the worker has not taken it yet
            self.stdout.write(f"Scenes: the demo's EW scenes are queued for ingest (job {pending.pk}).")
        else:
            job = job_submit(kind="demo_ingest", params={
                "paths": paths, "leads": str(folder / ".truth"),
                "write": {"scenes": scenes, "size": size, "tracks": tracks},
            }, reason="the demo's Extra Wide scenes, their ice chart and leads, and the tracks")
            what = f" and {tracks} altimetry tracks" if tracks else ""
            self.stdout.write(f"Scenes: the demo's {scenes} EW scenes{what} are queued (job {job.pk}): the worker "
                              "writes and ingests them, and they appear on the polar map (/scenes/) within a minute "
                              "of its start, with the ice chart and the leads a demo annotator traced.")
        self.stdout.write(f"The ice chart of them (written and imported by that job): {chart}")


def _imagettes_not_the_demos(root: Path, imagette_model) -> int:
    """How many imagettes the database holds when the demo's folder is missing (someone else's data: the demo adds
    nothing to it), else 0. Asked before the migration: a database without the table holds none."""
    if root.exists():
        return 0
    with connection.cursor() as cursor:
        if imagette_model._meta.db_table not in connection.introspection.table_names(cursor):
            return 0
    return imagette_model.objects.count()
