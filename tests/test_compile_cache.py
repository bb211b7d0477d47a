"""The persistent compile cache (visc/runtime/compile_cache.py): entries that are whole or
absent, a size bound that drops the least recently used, many processes at once, a cache
that cannot be written turning itself off; then the model cache of `visc.compile` and the
`visc cache` commands."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper
from test_runtime_layer import _opencl_builds

import visc
from visc.runtime import compile_cache as cc
from visc.runtime.compile_cache import CompileCache, default_cache


def _key(text: str) -> str:
    return CompileCache.key(text)


# -- the store ----------------------------------------------------------------------------------


def test_round_trip_and_keys(tmp_path):
    cache = CompileCache(tmp_path)
    key = CompileCache.key("ir", b"\x00bytes", "sm_90")
    assert len(key) == 64 and key == CompileCache.key("ir", b"\x00bytes", "sm_90")
    assert CompileCache.key("ab", "c") != CompileCache.key("a", "bc")  # length-prefixed parts
    assert CompileCache.key("x") != CompileCache.key(b"x")
    assert cache.get("ptx", key) is None
    cache.put("ptx", key, b"payload")
    assert cache.get("ptx", key) == b"payload"
    assert cache.get("other", key) is None  # kinds are separate
    assert os.path.isfile(tmp_path / "ptx" / key[:2] / key)
    info = cache.info()
    assert info["entries"] == 1 and info["kinds"]["ptx"]["entries"] == 1
    assert info["bytes"] == os.path.getsize(tmp_path / "ptx" / key[:2] / key)
    assert info["root"] == str(tmp_path) and info["max_bytes"] == cc.DEFAULT_MAX_BYTES


def test_bad_kind_or_key_is_a_programming_error(tmp_path):
    cache = CompileCache(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        cache.get("../up", _key("a"))
    with pytest.raises(ValueError, match="key"):
        cache.put("ptx", "not-hex", b"")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_entries_are_misses_and_removed(tmp_path, damage):
    cache = CompileCache(tmp_path)
    key = _key(damage)
    data = os.urandom(5000)
    cache.put("model", key, data)
    path = cache.path("model", key)
    blob = open(path, "rb").read()
    if damage == "truncate":  # a writer killed mid-write, a full disk
        blob = blob[:len(blob) // 2]
    elif damage == "flip":
        blob = blob[:-1] + bytes([blob[-1] ^ 1])
    elif damage == "garbage":
        blob = os.urandom(len(blob))
    else:
        blob = b""
    with open(path, "wb") as f:
        f.write(blob)
    assert cache.get("model", key) is None
    assert not os.path.exists(path)
    cache.put("model", key, data)  # compiled again
    assert cache.get("model", key) == data


def test_eviction_keeps_the_bound_and_drops_least_recently_used(tmp_path):
    entry = 1000 + cc._HEADER.size
    cache = CompileCache(tmp_path, max_bytes=int(4.5 * entry))
    keys = {name: _key(name) for name in "abcde"}
    for i, name in enumerate("abcd"):
        cache.put("k", keys[name], bytes([i]) * 1000)
        os.utime(cache.path("k", keys[name]), (1000 + i, 1000 + i))  # a oldest, d newest
    assert cache.get("k", keys["a"]) == b"\x00" * 1000  # a is now the most recently used
    cache.put("k", keys["e"], b"e" * 1000)  # over the bound: b, now the least recently used, goes
    present = {name for name, key in keys.items() if os.path.exists(cache.path("k", key))}
    assert present == {"a", "c", "d", "e"}
    assert cache.info()["bytes"] <= cache.max_bytes
    assert cache.get("k", keys["b"]) is None


def test_an_entry_larger_than_the_bound_is_not_stored(tmp_path):
    cache = CompileCache(tmp_path, max_bytes=100)
    cache.put("k", _key("big"), b"x" * 200)
    assert cache.get("k", _key("big")) is None and cache.info()["entries"] == 0


def test_clear_all_or_one_kind(tmp_path):
    cache = CompileCache(tmp_path)
    for kind in ("model", "ptx"):
        for i in range(3):
            cache.put(kind, _key(f"{kind}{i}"), b"x")
    assert cache.clear("ptx") == 3
    assert set(cache.info()["kinds"]) == {"model"}
    assert cache.clear() == 3
    assert cache.info()["entries"] == 0 and cache.get("model", _key("model0")) is None
    cache.put("model", _key("again"), b"y")  # the folders come back
    assert cache.get("model", _key("again")) == b"y"


def test_stale_temporary_files_are_swept(tmp_path):
    cache = CompileCache(tmp_path)
    cache.put("k", _key("a"), b"a")
    folder = os.path.dirname(cache.path("k", _key("a")))
    stale, fresh = os.path.join(folder, ".tmp-dead"), os.path.join(folder, ".tmp-writing")
    for path in (stale, fresh):
        open(path, "wb").write(b"half")
    os.utime(stale, (0, 0))
    assert cache.info()["entries"] == 1  # temporary files are never entries
    assert not os.path.exists(stale) and os.path.exists(fresh)


def _payload(key: str) -> bytes:
    """A large payload determined by its key: a torn or mixed-up write would show."""
    seed = hashlib.sha256(key.encode()).digest()
    return seed * 8192  # 256 KiB


def _hammer(root: str, keys: list[str], rounds: int, max_bytes: int) -> tuple[int, int]:
    """One process reading and writing the same keys as the others; (bad reads, hits)."""
    cache = CompileCache(root, max_bytes=max_bytes)
    bad = hits = 0
    rng = np.random.default_rng(os.getpid())
    for _ in range(rounds):
        key = keys[int(rng.integers(len(keys)))]
        data = cache.get("k", key)
        if data is None:
            cache.put("k", key, _payload(key))
        elif data != _payload(key):
            bad += 1
        else:
            hits += 1
    return bad, hits


def test_concurrent_processes_never_read_a_bad_entry(tmp_path):
    keys = [_key(str(i)) for i in range(6)]
    bound = 4 * len(_payload(keys[0]))  # room for 4 of the 6: evictions race the readers too
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_hammer, [(str(tmp_path), keys, 60, bound)] * 4)
    assert sum(bad for bad, _ in results) == 0
    assert sum(hits for _, hits in results) > 0
    info = CompileCache(tmp_path, max_bytes=bound).info()
    assert info["bytes"] <= bound
    leftovers = [n for _, _, files in os.walk(tmp_path) for n in files if n.startswith(".tmp-")]
    assert leftovers == []


def test_threads_share_one_cache(tmp_path):
    import threading

    cache = CompileCache(tmp_path, max_bytes=3 * 300_000)
    keys = [_key(f"t{i}") for i in range(5)]
    errors: list[str] = []

    def work() -> None:
        for i in range(40):
            key = keys[i % len(keys)]
            data = cache.get("k", key)
            if data is None:
                cache.put("k", key, _payload(key))
            elif data != _payload(key):
                errors.append(key)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and cache.enabled
    assert cache.info()["bytes"] <= cache.max_bytes


# -- a cache that cannot be written -------------------------------------------------------------


def test_a_file_in_the_way_warns_once_and_turns_the_cache_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = CompileCache(blocker / "cache")
    with pytest.warns(RuntimeWarning, match=str(blocker)):
        cache.put("k", _key("a"), b"a")
    assert not cache.enabled and cache.get("k", _key("a")) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.put("k", _key("b"), b"b")  # off: no second warning


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_folder_warns_and_turns_the_cache_off(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        cache = CompileCache(root)
        with pytest.warns(RuntimeWarning, match="cannot be written"):
            cache.put("k", _key("a"), b"a")
        assert not cache.enabled
    finally:
        root.chmod(0o700)


# -- the environment ----------------------------------------------------------------------------


def test_default_cache_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VISC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("VISC_CACHE", raising=False)
    monkeypatch.delenv("VISC_CACHE_MAX_BYTES", raising=False)
    cache = default_cache()
    assert cache is not None and cache.root == str(tmp_path / "compile")
    assert cache.max_bytes == cc.DEFAULT_MAX_BYTES
    assert default_cache() is cache  # one object per root: a root found unwritable stays off
    monkeypatch.setenv("VISC_CACHE_MAX_BYTES", "1.5G")
    assert default_cache().max_bytes == 3 << 29
    monkeypatch.setenv("VISC_CACHE_MAX_BYTES", "lots")
    with pytest.warns(RuntimeWarning, match="VISC_CACHE_MAX_BYTES"):
        assert default_cache().max_bytes == cc.DEFAULT_MAX_BYTES
    monkeypatch.setenv("VISC_CACHE", "0")
    assert default_cache() is None
    monkeypatch.setenv("VISC_CACHE", "1")
    monkeypatch.setenv("VISC_CACHE_DIR", "")
    assert default_cache() is None


@pytest.mark.skipif(not os.sys.platform.startswith("linux"), reason="the XDG layout is Linux's")
def test_the_user_cache_folder_honours_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("VISC_CACHE_DIR", raising=False)
    monkeypatch.delenv("VISC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cc.cache_root() == str(tmp_path / "visc" / "compile")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cc.cache_root() == os.path.join(os.path.expanduser("~"), ".cache", "visc", "compile")


@pytest.mark.parametrize("text,size", [("2G", 2 << 30), ("512M", 512 << 20), ("100kB", 102400), ("1GiB", 1 << 30),
                                       ("1000", 1000)])
def test_parse_size(text, size):
    assert cc.parse_size(text) == size


def test_the_test_session_has_its_own_cache():
    """conftest.py points VISC_CACHE_DIR at a temporary folder: no test reads or fills ~/.cache."""
    root = cc.cache_root()
    assert root is not None and not root.startswith(cc.user_cache_dir())


# -- the model cache of visc.compile --------------------------------------------------------------




@pytest.fixture
def cache(tmp_path, monkeypatch) -> CompileCache:
    """A cache of this test's own: no entry of another test can answer its compiles."""
    monkeypatch.setenv("VISC_CACHE_DIR", str(tmp_path / "visc-cache"))
    monkeypatch.delenv("VISC_CACHE", raising=False)
    found = default_cache()
    assert found is not None
    return found


def _tiny(weight_seed: int = 0, batch: int | str = 1) -> onnx.ModelProto:
    w = np.random.default_rng(weight_seed).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    return make_model(nodes, {"x": ([batch, 3, 8, 8], np.float32)}, ["y"], {"w": w})


def test_a_second_compile_comes_from_the_cache(cache, rng) -> None:
    from visc.tools.model_zoo import load_light_model

    target = "opencl" if _opencl_builds() else "cpu"
    proto = load_light_model("squeezenet")  # seeded random weights in place of the placeholders
    first = visc.compile(proto, target=target)
    assert not first.report.cached and cache.info()["kinds"]["model"]["entries"] == 1
    second = visc.compile(proto, target=target)
    assert second.report.cached and set(second.report.seconds) == {"cache"}
    assert (second.report.num_kernels, second.report.num_launches, second.report.arena_bytes) == \
        (first.report.num_kernels, first.report.num_launches, first.report.arena_bytes)
    assert second.sources == first.sources and second.metadata == first.metadata
    assert second.plan.to_json() == first.plan.to_json()
    x = rng.random((1, 3, 224, 224), dtype=np.float32)
    got, again = first.run([x])[0], second.run([x])[0]
    (want,) = run_onnxruntime(proto, {"data_0": x})
    scale = float(np.abs(want).max())
    assert float(np.abs(again - got).max()) <= 1e-4 * scale
    assert float(np.abs(again - want).max()) <= 1e-4 * scale
    for model in (first, second):
        model.close()


def test_what_the_result_depends_on_is_in_the_key(cache, tmp_path) -> None:
    base = {"target": "cpu", "input_shapes": {"x": (1, 3, 8, 8)}, "records": False}
    model = _tiny(batch="N")
    assert not visc.compile(model, **base).report.cached
    assert visc.compile(model, **base).report.cached
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    assert not visc.compile(str(path), **base).report.cached  # a file: keyed on its bytes
    assert visc.compile(str(path), **base).report.cached
    changes: list[dict[str, object]] = [{"input_shapes": {"x": (2, 3, 8, 8)}}, {"records": None}]
    if _opencl_builds():
        changes.append({"target": "opencl"})
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"format": "visc-tuning-records", "records": []}))
    changes.append({"records": str(records)})
    for change in changes:
        assert not visc.compile(model, **{**base, **change}).report.cached, change
        assert visc.compile(model, **{**base, **change}).report.cached, change
    record = {"device": "cpu:x86_64:other", "key": "k", "schedule": {"wg": 8}, "seconds": 1e-5}
    records.write_text(json.dumps({"format": "visc-tuning-records", "records": [record]}))  # new contents
    assert not visc.compile(model, **{**base, "records": str(records)}).report.cached
    assert not visc.compile(_tiny(weight_seed=1, batch="N"), **base).report.cached  # other weights
    assert visc.compile(model, **base, fallback=["Relu"]).report.cached  # the cpu target ignores fallback
    # the proto, the file, one per change, the new records, the other weights
    assert cache.info()["kinds"]["model"]["entries"] == 4 + len(changes)


def test_a_compile_that_prints_or_sets_passes_skips_the_cache(cache) -> None:
    from visc.compiler import compile_model, default_pipeline

    model = _tiny()
    compile_model(model, target="cpu", records=False, cache=False)
    visc.compile(model, target="cpu", records=False, cache=False)
    assert cache.info()["entries"] == 0  # cache=False: not even the kernels' objects
    compile_model(model, target="cpu", records=False, print_ir_after=lambda spec, module: None)
    compile_model(model, target="cpu", records=False, pipeline=default_pipeline("cpu"))
    kinds = cache.info()["kinds"]
    assert "model" not in kinds and kinds["cpu-obj"]["entries"] >= 1  # the objects are still shared


def test_cache_off(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VISC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("VISC_CACHE", "0")
    model = _tiny()
    for _ in range(2):
        assert not visc.compile(model, target="cpu", records=False).report.cached
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_warns_once_and_compiles(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("VISC_CACHE_DIR", str(blocker))
    with pytest.warns(RuntimeWarning, match="compile cache .*not-a-folder"):
        first = visc.compile(_tiny(), target="cpu", records=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = visc.compile(_tiny(), target="cpu", records=False)  # off for the process: no warning
    assert not first.report.cached and not second.report.cached
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(first.run([x])[0], second.run([x])[0])


def test_shipped_record_warnings_come_again_from_the_cache(cache, tmp_path, monkeypatch) -> None:
    from visc.tuner.records import SHIPPED_ENV, ShippedRecordsWarning

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "broken.json").write_text('{"format": "visc-tuning-records", "records": [')
    monkeypatch.setenv(SHIPPED_ENV, str(shipped))
    for cached in (False, True):
        with pytest.warns(ShippedRecordsWarning, match="broken.json"):
            model = visc.compile(_tiny(), target="cpu")
        assert model.report.cached == cached


def test_a_record_book_learns_the_same_from_a_hit(cache) -> None:
    """`visc compile` reports what its RecordBook applied and missed: a hit must tell it too."""
    from visc.compiler import compile_model
    from visc.tuner.records import RecordBook

    books = [RecordBook("cpu:test", {}, "test.json") for _ in range(2)]
    models = [compile_model(_tiny(), target="cpu", records=book) for book in books]
    assert [m.report.cached for m in models] == [False, True]
    assert books[0].missing and books[1].missing == books[0].missing
    assert books[1].applied == books[0].applied and books[1].applied_ops == books[0].applied_ops


def test_a_data_dependent_model_is_cached_as_a_pipeline(cache) -> None:
    from test_dynamic_split import _threshold_model

    from visc.runtime.pipeline import Pipeline

    model = _threshold_model()
    first, second = (visc.compile(model, target="cpu") for _ in range(2))
    try:
        assert isinstance(second, Pipeline) and second.models[0].report.cached
        assert [i.target for i in second.infos] == ["cpu", "host"]
        x = np.random.default_rng(3).standard_normal((1, 3, 6, 6)).astype(np.float32)
        for got, want in zip(second.run({"x": x}), first.run({"x": x}), strict=True):
            np.testing.assert_array_equal(got, want)
    finally:
        first.close()
        second.close()


def test_a_damaged_model_entry_is_compiled_again(cache) -> None:
    model = _tiny()
    visc.compile(model, target="cpu", records=False)
    (folder,) = [p for p, _, files in os.walk(os.path.join(cache.root, "model")) if files]
    key = os.listdir(folder)[0]
    cache.put("model", key, b"PK\x03\x04 not a zip")  # intact as an entry, useless as a model
    again = visc.compile(model, target="cpu", records=False)
    assert not again.report.cached
    assert visc.compile(model, target="cpu", records=False).report.cached


# -- PTX and OpenCL program binaries ------------------------------------------------------------


def test_ptx_comes_from_the_cache(cache) -> None:
    from visc.backends.ptx import PTX_CACHE_KIND, emit_ptx
    from visc.compiler import default_pipeline, run_passes
    from visc.frontend.onnx import import_model

    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ((4, 5), np.float32)}, ["y"])
    imported = import_model(model)
    run_passes(imported.module, list(default_pipeline("cuda")), imported.weights)
    first = emit_ptx(imported.module, "sm_90")
    assert cache.info()["kinds"][PTX_CACHE_KIND]["entries"] == 1
    (folder,) = [p for p, _, files in os.walk(os.path.join(cache.root, PTX_CACHE_KIND)) if files]
    key = os.listdir(folder)[0]
    cache.put(PTX_CACHE_KIND, key, b"// from the cache\n" + first.encode())
    assert emit_ptx(imported.module, "sm_90").startswith("// from the cache")
    assert emit_ptx(imported.module, "sm_86") != first  # another architecture: another entry
    assert cache.info()["kinds"][PTX_CACHE_KIND]["entries"] == 2


def test_opencl_binaries_come_from_the_cache_and_bad_ones_are_rebuilt(cache) -> None:
    if not _opencl_builds():
        pytest.skip("the OpenCL device cannot build programs here")
    import pyopencl as cl

    from visc.runtime.devices import get_context
    from visc.runtime.opencl import OPENCL_CACHE_KIND, build_program

    ctx, dev = get_context()
    source = "__kernel void twice(__global float* a) { a[get_global_id(0)] *= 2.0f; }"

    def run(program) -> np.ndarray:
        queue = cl.CommandQueue(ctx, dev)
        host = np.arange(4, dtype=np.float32)
        buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=host)
        cl.Kernel(program, "twice")(queue, (4,), None, buf)
        cl.enqueue_copy(queue, host, buf)
        queue.finish()
        return host

    want = np.arange(4, dtype=np.float32) * 2
    np.testing.assert_array_equal(run(build_program(ctx, dev, source)), want)
    assert cache.info()["kinds"][OPENCL_CACHE_KIND]["entries"] == 1
    np.testing.assert_array_equal(run(build_program(ctx, dev, source)), want)  # from the binary
    (folder,) = [p for p, _, files in os.walk(os.path.join(cache.root, OPENCL_CACHE_KIND)) if files]
    key = os.listdir(folder)[0]
    cache.put(OPENCL_CACHE_KIND, key, b"not a program binary")  # intact entry, refused by the driver
    np.testing.assert_array_equal(run(build_program(ctx, dev, source)), want)
    assert cache.get(OPENCL_CACHE_KIND, key) != b"not a program binary"  # rebuilt and stored again


# -- the command line ---------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visc.tools.visc_cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_cli_compile_and_cache_commands(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VISC_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "tiny.onnx"
    onnx.save(_tiny(), str(src))
    compile_args = ("compile", str(src), "--target", "cpu", "-o", str(tmp_path / "tiny.visc"))
    first, second, fresh = _cli(*compile_args), _cli(*compile_args), _cli(*compile_args, "--no-cache")
    for proc in (first, second, fresh):
        assert proc.returncode == 0, proc.stderr
    assert "(from the cache)" in second.stdout
    assert "(from the cache)" not in first.stdout and "(from the cache)" not in fresh.stdout
    info = _cli("cache", "info")
    assert info.returncode == 0 and str(tmp_path / "cache" / "compile") in info.stdout
    assert "bound: 2.0 GiB" in info.stdout and re.search(r"^model\s+1\s", info.stdout, re.MULTILINE), info.stdout
    assert re.search(r"^cpu-obj\s+1\s", info.stdout, re.MULTILINE), info.stdout  # the one fused kernel
    cleared = _cli("cache", "clear", "--kind", "model")
    assert cleared.returncode == 0 and "removed 1 entry of kind 'model'" in cleared.stdout
    assert "(from the cache)" not in _cli(*compile_args).stdout
    assert "removed 2 entries from" in _cli("cache", "clear").stdout  # the model and its kernel
    bad = _cli("cache", "clear", "--kind", "../x")
    assert bad.returncode == 1 and bad.stderr.startswith("visc: error: --kind ../x") and "Traceback" not in bad.stderr
    monkeypatch.setenv("VISC_CACHE", "0")
    assert "the compile cache is off" in _cli("cache", "info").stdout
