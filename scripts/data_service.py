"""Runs a tf.data service dispatcher or worker, so the training input pipeline (read,
parse, decode, shuffle, batch) runs on other machines' cores instead of the trainer's.

    # on 10.0.0.5: the dispatcher, then a worker on each input machine
    python scripts/data_service.py --role=dispatcher --port=5050
    python scripts/data_service.py --role=worker --dispatcher=10.0.0.5:5050 --host=10.0.0.6
    # on the training machine
    python model.py --flagfile=configs/demo.flags --data_service=grpc://10.0.0.5:5050

The dispatcher hands out the work; each worker runs the pipeline model.py sends it (with
--data_service) and streams batches to the trainer. Workers read the shards by the paths
the trainer names, so every worker must see --shards_dir at the same path (a shared file
system or the same copy on each machine). Files are split between workers dynamically:
each training example is read once per epoch, whatever the number of workers, and
workers may join or leave during a run. Each server runs until it is stopped (Ctrl-C,
SIGTERM).
"""

import os
import signal
import socket
import time

import tensorflow as tf
from absl import app, flags

flags.DEFINE_enum("role", None, ["dispatcher", "worker"], "Which server to run.")
flags.DEFINE_integer("port", 0, "Port to listen on; 0: 5050 for a dispatcher, any free port for a worker.",
                     lower_bound=0)
flags.DEFINE_string("dispatcher", "", "Worker only: the dispatcher's HOST:PORT.")
flags.DEFINE_string("host", "", "Worker only: the name or address the trainer reaches this machine by; "
                    "empty: this machine's host name.")
flags.DEFINE_string("work_dir", "", "Dispatcher only: a folder where it journals its state, so a restarted "
                    "dispatcher resumes its jobs (fault-tolerant mode); empty: none.")
flags.mark_flag_as_required("role")
FLAGS = flags.FLAGS

DISPATCHER_PORT = 5050


def start_dispatcher(port, work_dir):
    config = tf.data.experimental.service.DispatcherConfig(port=port or DISPATCHER_PORT, work_dir=work_dir or None,
                                                           fault_tolerant_mode=bool(work_dir))
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher, host, port):
    host = host or socket.gethostname()
    config = tf.data.experimental.service.WorkerConfig(dispatcher_address=dispatcher, port=port,
                                                       worker_address=f"{host}:%port%")
    return tf.data.experimental.service.WorkerServer(config)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.role == "worker" and not FLAGS.dispatcher:
        raise app.UsageError("a worker needs --dispatcher=HOST:PORT (the address the dispatcher printed)")
    # Stop at once: a server torn down the ordinary way waits in gRPC's shutdown for its
    # clients' open streams, once for over 30 s. Nothing is lost: a worker holds no state,
    # and the dispatcher's journal (--work_dir) is written as it goes.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if FLAGS.role == "dispatcher":
        server = start_dispatcher(FLAGS.port, FLAGS.work_dir)
        print(f"dispatcher ready at {server.target}: train with --data_service={server.target}", flush=True)
    else:
        server = start_worker(FLAGS.dispatcher, FLAGS.host, FLAGS.port)
        print(f"worker ready, serving dispatcher {FLAGS.dispatcher}", flush=True)
    try:
        while True:  # Not server.join(): it blocks in C++, where no signal handler runs.
            time.sleep(3600)
    except KeyboardInterrupt:
        os._exit(0)


if __name__ == "__main__":
    app.run(main)
