"""The unpack cache (rsnet_edge/cache.py; issue 21 items 3, 4, 12, 13, 14): threads of one process
loading one new artifact never collide, a planted link is never followed, a cache folder of another
user or writable by others is refused, temp files of a killed writer are removed, a program the
runtime refuses is removed, errors name the user's artifact and the cache, ``~`` is expanded, and the
program the native loader opens is the file that was hashed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from fakes import artifacts as A
from helpers import ROOT, subprocess_env
from rsnet_edge import cache as C
from rsnet_edge import rsfold
from rsnet_edge.runtime import RuntimeLoadError, load


@pytest.fixture(scope="module")
def art():
    return A.artifact("executorch", "shared")          # tiny.pte.rsfold (+ its manifest), cached


def _fresh(tmp_path, art, name="a.pte.rsfold"):
    return A.copy_with_sidecar(art, tmp_path, name)


def test_threads_loading_one_new_artifact_never_collide(art, tmp_path):
    """4 threads x 3 rounds, each round a NEW empty cache: every load and run succeeds, the cache
    ends with exactly the programs and no temp file."""
    a = _fresh(tmp_path, art)
    errors = []
    for round_ in range(3):
        cache = tmp_path / f"cache{round_}"

        def worker():
            try:
                clf = load(a, cache=cache)
                for r in clf.resolutions:
                    clf.run(clf.dummy_input(r), r)
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))

        ts = [threading.Thread(target=worker) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        names = sorted(p.name for p in cache.iterdir())
        assert all(not n.startswith(".") for n in names) and len(names) == len(A.RESOLUTIONS), names
    assert errors == []


def test_a_planted_link_is_not_followed(art, tmp_path):
    """Links planted in the cache (at a program's name, and at every name a temp file could have)
    are never written through: the victim file is untouched and the load succeeds."""
    a = _fresh(tmp_path, art)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    box = rsfold.Container.open(a)
    for o in box.outputs:
        os.symlink(victim, cache / f"{o.sha256}.pte")
    clf = load(a, cache=cache)
    for r in clf.resolutions:
        clf.run(clf.dummy_input(r), r)
    assert victim.read_text() == "precious"
    for o in box.outputs:
        p = cache / f"{o.sha256}.pte"
        assert not p.is_symlink() and p.stat().st_size == o.size


@pytest.mark.parametrize("case", ["other user", "group writable", "a link", "a file"])
def test_an_unsafe_cache_folder_is_refused_in_one_line(art, tmp_path, case):
    a = _fresh(tmp_path, art)
    cache = tmp_path / "cache"
    if case == "a link":
        (tmp_path / "real").mkdir(mode=0o700)
        os.symlink(tmp_path / "real", cache)
    elif case == "a file":
        cache.write_bytes(b"x")
    else:
        cache.mkdir(mode=0o700)
        if case == "other user":
            if os.getuid() != 0:
                pytest.skip("chown to another user needs root")
            os.chown(cache, 4242, 4242)
        else:
            os.chmod(cache, 0o770)
    with pytest.raises(RuntimeLoadError) as e:
        clf = load(a, cache=cache)
        clf.run(clf.dummy_input(A.RESOLUTIONS[0]))
    msg = str(e.value)
    assert "\n" not in msg and str(cache) in msg and "RSNET_EDGE_CACHE" in msg, msg
    assert a.name in msg or "unpack cache" in msg


def test_temp_files_of_a_killed_writer_are_removed(art, tmp_path):
    """A writer killed (SIGKILL) while it unpacks leaves its temp file; the next writer removes
    it (its pid is dead), while a live writer's temp file is left alone."""
    a = _fresh(tmp_path, art)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    stale = cache / f".x.tmp-{dead.pid}-deadbeef.pte"
    stale.write_bytes(b"half a program")
    live = cache / f".y.tmp-{os.getpid()}-cafecafe.pte"
    live.write_bytes(b"being written")
    clf = load(a, cache=cache)
    clf.run(clf.dummy_input(A.RESOLUTIONS[0]))
    assert not stale.exists() and live.exists()


def test_a_killed_unpack_leaves_no_trap_and_the_next_load_works(art, tmp_path):
    """SIGKILL in the middle of a real first load (many times over a range of moments): whatever
    it left, the next load in another process succeeds and leaves no temp file behind."""
    a = _fresh(tmp_path, art)
    cache = tmp_path / "cache"
    code = ("import sys, rsnet_edge; c = rsnet_edge.load(sys.argv[1], cache=sys.argv[2]); "
            "[c.run(c.dummy_input(r), r) for r in c.resolutions]")
    for delay in (0.5, 1.5, 3.0):
        p = subprocess.Popen([sys.executable, "-c", code, str(a), str(cache)], cwd=ROOT, env=subprocess_env())
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
    r = subprocess.run([sys.executable, "-c", code, str(a), str(cache)], cwd=ROOT, env=subprocess_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []


def test_a_refused_program_is_removed_and_named_by_the_artifact(tmp_path):
    """A container whose program is valid RSFOLD but not a loadable ExecuTorch program: the error
    names the user's artifact (not the cache file) and nothing stays in the cache."""
    junk = A.artifact("executorch").read_bytes()[:3000]       # a real program, cut: the loader refuses it
    art = tmp_path / "bad.pte.rsfold"
    art.write_bytes(rsfold.pack([rsfold.Program(("forward_64", "forward"), junk, [])], inner="pte"))
    import json
    fixture = json.loads((ROOT / "tests" / "data" / "manifest_fixture.json").read_text())
    fixture.update(entries=[{"resolution": 64, "entry": "forward_64"}], default_resolution=64, policy={},
                   artifact={"file": art.name})
    (tmp_path / "bad.pte.rsfold.manifest.json").write_text(json.dumps(fixture))
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeLoadError) as e:
        clf = load(art, cache=cache, verify=False)
        clf.run(clf.dummy_input(64))
    msg = str(e.value)
    assert msg.startswith("bad.pte.rsfold") and "\n" not in msg, msg
    assert list(cache.iterdir()) == []


def test_tilde_in_the_cache_variable_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(C.CACHE_ENV, "~/rsn")
    assert C.cache_dir() == tmp_path / "rsn"
    monkeypatch.delenv(C.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "~/xdg")
    assert C.cache_dir() == tmp_path / "xdg" / "rsnet_edge"


def test_the_loader_opens_the_file_that_was_hashed(tmp_path):
    """After the check, the name can be swapped: the runtime still reads the verified bytes."""
    data = b"program bytes" * 100
    import hashlib
    sha = hashlib.sha256(data).hexdigest()
    folder = C.ensure_dir(tmp_path / "c")
    got = C.fetch(folder, sha, len(data), ".pte", lambda f: (f.write(data), sha)[1], "x")
    os.replace(folder / f"{sha}.pte", tmp_path / "moved")
    (folder / f"{sha}.pte").write_bytes(b"swapped in by someone else")
    with open(got.loader_path, "rb") as f:
        assert f.read() == data
    got.close()
