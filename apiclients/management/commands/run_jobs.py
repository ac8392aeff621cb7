import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.cluster import Cluster

from apiclients import tasks


class Command(BaseCommand):
    help = (
        "Run the job runner (alerts and their deliveries, usage log pruning): "
        "django-q2's cluster over the app's database. bin/serve starts it."
    )

    def handle(self, *args, **options):
        tasks.ensure_schedules()
        cluster = Cluster()
        stopping = threading.Event()
        cluster.start()
        # The cluster is stopped from here, not from inside a signal handler
        # (which can interrupt the interpreter while it holds a lock the
        # stop needs): a signal only asks for it.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        while not stopping.wait(1):
            if not cluster.sentinel.is_alive():
                break
        # Workers finish the task in hand. Should the cluster's own processes
        # have been signalled too (a whole process group stopped at once),
        # its stop can wait for a process that is gone: give up after the
        # longest task; what was in hand is run again (at-least-once).
        stopper = threading.Thread(target=cluster.stop, daemon=True)
        stopper.start()
        stopper.join(settings.JOBS_TIMEOUT + 5)
