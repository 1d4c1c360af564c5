"""``netshape train`` checks shared by the MLP and LM command-line tests: a refused run,
a corrupt comparison record, a real Ctrl-C in the middle of a run."""

from __future__ import annotations

import os
import signal
import subprocess

from netshape.cli import main


def assert_refused(capsys, argv: list[str], out, *messages: str) -> None:
    """``netshape <argv>`` exits 2 with a usage error naming every one of ``messages``,
    before ``out`` (the run's output folder) or any file in it is made."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("netshape train: error:") and all(m in err for m in messages), err
    assert not out.exists()  # refused before any file (or the folder) is made


def assert_corrupt_compare_named(capsys, folder, texts) -> None:
    """``--resume`` of ``folder`` whose ``compare.json`` holds each of ``texts`` in turn
    is refused by the file's name, without a traceback."""
    for text in texts:
        (folder / "compare.json").write_text(text)
        assert main(["train", "--resume", str(folder), "-q"]) == 2
        err = capsys.readouterr().err
        assert "compare.json" in err and "Traceback" not in err, text


def interrupt_when_ready(argv: list[str], ready: str) -> tuple[int, str]:
    """Run ``argv`` on one thread; send it SIGINT once its first line on stdout is
    ``ready`` (the child says so while it waits); its exit status and stderr."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # pytest-xdist workers ignore SIGINT and children inherit SIG_IGN, under which Python
    # installs no KeyboardInterrupt handler: restore the default as a terminal would have it
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()  # blocks until the child is ready
        assert line == f"{ready}\n", proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err
