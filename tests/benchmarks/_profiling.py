"""The benchmarks' ``--profile DIR`` mode, shared by ``bench_step`` and ``bench_rollout``.

A pyinstrument call tree (``pip install pyinstrument``; not a dependency of the package) of the code
run inside :func:`profiled`, written as ``DIR/<stem>.txt`` (text) and ``.html``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def profiled(out_dir: str | None, stem: str) -> Iterator[None]:
    """Profile the block into ``out_dir`` (nothing when ``out_dir`` is empty); no files if the block raises."""
    if not out_dir:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005)
    profiler.start()
    yield
    profiler.stop()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # not Path.with_suffix: a stem such as "qwen2.5-72b-..." has a dot of its own
    (out / f"{stem}.txt").write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    (out / f"{stem}.html").write_text(profiler.output_html())
