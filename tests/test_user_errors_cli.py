"""Every bad input on the command line gets one clear paragraph (issue 21): `visc: error: ...`
naming the user's own words, exit status 1, no traceback, nothing half-written left behind,
found before any long compile or tune; and the outputs that misled users now say what they
did. Each case runs the CLI as a subprocess on tiny models built here."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_cli import _assert_clean_error, _small_model, run_cli

from visc.tools.model_zoo import light_model_path

X = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)


def _conv_model(path: Path, input_dims: list[int | str] | None = None) -> str:
    """x [1, 3, 8, 8] -> Conv 3x3 (4 channels) -> Relu: one tunable task."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, input_dims or [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["t"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["t"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _fails_cleanly(where: Path, *args: str, needles: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run `visc *args` in ``where``: one `visc: error:` paragraph naming ``needles``, and no
    file created or removed there."""
    before = _files(where)
    proc = run_cli(*args, cwd=str(where))
    _assert_clean_error(proc, *needles)
    assert _files(where) == before, f"files changed: {_files(where) ^ before}"
    return proc


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with a tiny model (m.onnx: Relu, Relu), its artifact, a conv model, an input."""
    root = tmp_path_factory.mktemp("user_errors")
    _small_model(str(root / "m.onnx"))
    _conv_model(root / "c.onnx")
    assert run_cli("compile", "m.onnx", "-o", "m.visc", cwd=str(root)).returncode == 0
    np.save(root / "x.npy", X)
    return root


@pytest.fixture(scope="module")
def tuned(work: Path) -> Path:
    """Records of c.onnx's one task on this machine's default device (one trial)."""
    db = work / "t.db"
    proc = run_cli("tune", "c.onnx", "--trials", "1", "--repeat", "1", "--records", str(db), "--no-isolation",
                   cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    return db


def _unprivileged(args: list[str]) -> list[str]:
    """``args`` run so that file permissions bind (root ignores a 0444 file without dropping
    CAP_DAC_OVERRIDE); skips where that cannot be arranged."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    drop = [setpriv or "setpriv", "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search"]
    if setpriv is None or subprocess.run([*drop, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without setpriv: read-only files are writable")
    return [*drop, *args]


def _visc_unprivileged(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = _unprivileged([sys.executable, "-m", "visc.tools.visc_cli", *args])
    return subprocess.run(cmd, capture_output=True, text=True, cwd=str(cwd), timeout=600)


# ------------------------------------------------------------------ outputs that cannot be written


def test_compile_output_in_missing_folder_fails_before_compiling(work: Path) -> None:
    # --print-ir-after-all would print IR to stderr had the compile run first
    _fails_cleanly(work, "compile", "m.onnx", "-o", "missing/dir/x.visc", "--print-ir-after-all",
                   needles=("-o missing/dir/x.visc", "does not exist"))


def test_compile_output_is_a_directory(work: Path) -> None:
    (work / "adir").mkdir(exist_ok=True)
    _fails_cleanly(work, "compile", "m.onnx", "-o", "adir", needles=("-o adir", "is a directory"))


def test_run_output_in_missing_folder_fails_before_running(work: Path) -> None:
    proc = _fails_cleanly(work, "run", "m.visc", "--output", "missing/o.npz", needles=("--output missing/o.npz",))
    assert "device:" not in proc.stdout


def test_records_export_to_missing_folder(work: Path, tuned: Path) -> None:
    _fails_cleanly(work, "records", "export", "missing/x.json", "--records", tuned.name,
                   needles=("missing/x.json", "does not exist"))


def test_import_save_weights_to_missing_folder(work: Path) -> None:
    proc = _fails_cleanly(work, "import", "m.onnx", "--save-weights", "missing/w.npz",
                          needles=("--save-weights missing/w.npz",))
    assert proc.stdout == ""


def test_run_output_is_written_whole(work: Path) -> None:
    proc = run_cli("run", "m.visc", "--input", "x=x.npy", "--output", "out", cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    assert "outputs saved to out.npz" in proc.stdout
    np.testing.assert_allclose(np.load(work / "out.npz")["y"], np.maximum(X, 0))
    assert not [f for f in _files(work) if ".tmp" in f]
    (work / "out.npz").unlink()


# ------------------------------------------------------------------ inputs and names


def test_demo_unknown_model_lists_the_names(work: Path) -> None:
    _fails_cleanly(work, "demo", "--model", "nosuch", needles=("--model nosuch", "squeezenet", "resnet50"))


def test_same_input_twice(work: Path) -> None:
    _fails_cleanly(work, "run", "m.visc", "--input", "x.npy", "--input", "x.npy",
                   needles=("--input x.npy", "takes 1 input", "2 were given"))
    _fails_cleanly(work, "run", "m.visc", "--input", "x=x.npy", "--input", "x=x.npy",
                   needles=("input 'x' is given twice",))


def test_input_file_that_is_not_npy(work: Path) -> None:
    (work / "text.npy").write_text("hello\n")
    proc = _fails_cleanly(work, "run", "m.visc", "--input", "x=text.npy",
                          needles=("--input x=text.npy", "'text.npy' is not a numpy .npy file"))
    assert "pickle" not in proc.stderr


def test_input_of_another_dtype_needs_cast(work: Path) -> None:
    np.save(work / "x64.npy", X.astype(np.float64))
    _fails_cleanly(work, "run", "m.visc", "--input", "x=x64.npy", needles=("'x'", "float64"))
    proc = run_cli("run", "m.visc", "--input", "x=x64.npy", "--cast", cwd=str(work))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["run", "m.visc", "--repeat", "-3"], "--repeat -3"),
    (["run", "m.visc", "--seed", "-1"], "--seed -1"),
    (["bench", "m.onnx", "--repeat", "0"], "--repeat 0"),
    (["demo", "--repeat", "0"], "--repeat 0"),
    (["tune", "c.onnx", "--trials", "0", "--records", "new.db"], "--trials 0"),
    (["tune", "c.onnx", "--trials", "-2", "--records", "new.db"], "--trials -2"),
    (["tune", "c.onnx", "--repeat", "0", "--records", "new.db"], "--repeat 0"),
    (["tune", "c.onnx", "--timeout", "0", "--records", "new.db"], "--timeout 0"),
    (["tune", "c.onnx", "--ops", "conv2d,bogus", "--records", "new.db"], "'bogus'"),
    (["tune", "c.onnx", "--plot", "missing/p.png", "--records", "new.db"], "--plot missing/p.png"),
    (["tune", "c.onnx", "--device", "no-such-device", "--records", "new.db"], "'no-such-device'"),
    (["bench", "c.onnx", "--device", "no-such-device"], "'no-such-device'"),
    (["compile", "c.onnx", "--target", "cuda", "--device", "cuda:x", "-o", "q.visc"], "--device cuda:x"),
    (["records", "validate", "c.onnx", "--repeat", "0", "--records", "new.db"], "--repeat 0"),
    (["pipeline", "c.onnx", "--stage", "cpu", "--frames", "0"], "--frames 0"),
    (["pipeline", "c.onnx", "--stage", "cpu", "--frames-in-flight", "0"], "--frames-in-flight 0"),
    (["pipeline", "c.onnx", "--stage", "cpu:conv", "--stage", "cpu", "--replicas", "a,b"], "--replicas a,b"),
    (["pipeline", "c.onnx", "--auto", "2", "--devices", "gpu0"], "'gpu0'"),
    (["pipeline", "c.onnx", "--stage", "cpu", "--trace", "missing/t.json"], "--trace missing/t.json"),
])
def test_counts_and_options_are_checked_first(work: Path, args: list[str], needle: str) -> None:
    _fails_cleanly(work, *args, needles=(needle,))


def test_import_output_to_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`visc import model.onnx | head -1`: the reader leaves early; no BrokenPipeError."""
    chain = ["t", *[f"t{i}" for i in range(1, 400)], "y"]  # IR text far beyond a pipe's buffer
    nodes = [helper.make_node("Relu", [a], [b], name=f"relu_{b}") for a, b in zip(chain, chain[1:], strict=False)]
    _small_model(str(tmp_path / "long.onnx"), "Relu", nodes)
    proc = subprocess.Popen([sys.executable, "-m", "visc.tools.visc_cli", "import", str(tmp_path / "long.onnx")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"builtin.module")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # as a Unix tool killed by SIGPIPE
    assert err == ""


def test_visc_opt_unknown_pass_suggests_the_close_one(tmp_path: Path) -> None:
    src = tmp_path / "f.mlir"
    src.write_text("builtin.module {}\n")
    proc = subprocess.run([sys.executable, "-m", "visc.tools.visc_opt", str(src), "-p", "vision-fuse-elementwis"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("visc-opt: error: ") and proc.stderr.strip().count("\n") == 0
    assert "'vision-fuse-elementwis'" in proc.stderr and "did you mean 'vision-fuse-elementwise'" in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "visc.tools.visc_opt", str(tmp_path / "none.mlir")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and missing.stderr.startswith("visc-opt: error: ")
    assert "none.mlir" in missing.stderr and "Traceback" not in missing.stderr


# ------------------------------------------------------------------ tuning records that cannot serve


def test_read_only_records_file(work: Path, tuned: Path) -> None:
    ro = work / "ro.db"
    shutil.copy(tuned, ro)
    ro.chmod(0o444)
    data = ro.read_bytes()
    proc = _visc_unprivileged("tune", "c.onnx", "--trials", "2", "--resume", "--records", "ro.db", cwd=work)
    _assert_clean_error(proc, "'ro.db'", "read-only")
    assert ro.read_bytes() == data
    assert run_cli("records", "export", "exp.json", "--records", tuned.name, cwd=str(work)).returncode == 0
    proc = _visc_unprivileged("records", "import", "exp.json", "--records", "ro.db", cwd=work)
    _assert_clean_error(proc, "'ro.db'", "read-only")
    assert ro.read_bytes() == data
    # reading needs no write access
    assert _visc_unprivileged("records", "best", "--records", "ro.db", cwd=work).returncode == 0


def test_records_in_read_only_folder(work: Path, tuned: Path) -> None:
    folder = work / "ro_dir"
    folder.mkdir()
    shutil.copy(tuned, folder / "t.db")
    folder.chmod(0o555)
    try:
        proc = _visc_unprivileged("tune", "c.onnx", "--trials", "2", "--resume", "--records", "ro_dir/t.db", cwd=work)
        _assert_clean_error(proc, "'ro_dir/t.db'", "read-only")
        proc = _visc_unprivileged("tune", "c.onnx", "--trials", "1", "--records", "ro_dir/new.db", cwd=work)
        _assert_clean_error(proc, "'ro_dir/new.db'", "read-only")
        assert sorted(os.listdir(folder)) == ["t.db"]
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("command", [
    ["tune", "c.onnx", "--trials", "1"],
    ["records", "best"],
    ["records", "export", "out.json"],
    ["records", "validate", "c.onnx"],
    ["compile", "c.onnx", "-o", "c.visc"],
])
def test_records_that_are_not_a_database(work: Path, command: list[str]) -> None:
    (work / "garbage.db").write_text("garbage garbage\n")
    (work / "dir.db").mkdir(exist_ok=True)
    for records, needle in (("garbage.db", "not a records database"), ("dir.db", "is a directory")):
        proc = _fails_cleanly(work, *command, "--records", records, needles=(f"'{records}'", needle))
        assert "[SQL:" not in proc.stderr and "sqlalche" not in proc.stderr


def test_records_import_of_a_bad_export_creates_no_database(work: Path) -> None:
    (work / "bad.json").write_text('{"format": "visc-tuning-records", "records": [\n')
    _fails_cleanly(work, "records", "import", "bad.json", "--records", "fresh.db", needles=("'bad.json'",))
    (work / "other.json").write_text('{"hello": 1}')
    _fails_cleanly(work, "records", "import", "other.json", "--records", "fresh.db",
                   needles=("'other.json'", "not a visc records export"))


# ------------------------------------------------------------------ options that accepted mistakes


def test_fallback_op_types_are_checked(work: Path) -> None:
    _fails_cleanly(work, "compile", "c.onnx", "--fallback", "conv", "-o", "f.visc",
                   needles=("--fallback conv", "'conv'", "did you mean 'Conv'"))
    _fails_cleanly(work, "compile", "c.onnx", "--fallback", "Relu,Bogus", "-o", "f.visc",
                   needles=("'Bogus'", "case-sensitive", "NonMaxSuppression"))
    _fails_cleanly(work, "import", "c.onnx", "--show-placement", "--fallback", "relu", needles=("did you mean 'Relu'",))
    _fails_cleanly(work, "pipeline", "c.onnx", "--fallback", "conv", "--devices", "opencl", needles=("'conv'",))


def test_fallback_op_type_the_model_lacks_is_a_warning(work: Path) -> None:
    proc = run_cli("compile", "c.onnx", "--fallback", "Sigmoid", "-o", "f.visc", cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("visc: warning: --fallback Sigmoid") and "no Sigmoid node" in proc.stderr
    (work / "f.visc").unlink()


def test_compile_device_must_exist(work: Path) -> None:
    proc = _fails_cleanly(work, "compile", "c.onnx", "--device", "no-such-device", "-o", "d.visc",
                          needles=("'no-such-device'",))
    devices = run_cli("devices").stdout
    first = re.search(r"\d+:\d+\s+(\S+)", devices)
    assert first and first.group(1) in proc.stderr  # the devices found are listed


def test_cuda_arch_is_checked(work: Path) -> None:
    proc = _fails_cleanly(work, "compile", "c.onnx", "--target", "cuda", "--arch", "sm_999", "-o", "a.visc",
                          needles=("--arch sm_999", "sm_80", "sm_90"))
    assert "not a recognized processor" not in proc.stderr
    _fails_cleanly(work, "compile", "c.onnx", "--target", "cuda", "--arch", "gfx90a", "-o", "a.visc",
                   needles=("--arch gfx90a", "sm_90"))
    _fails_cleanly(work, "compile", "c.onnx", "--arch", "sm_90", "-o", "a.visc", needles=("--target cuda",))


def test_input_shape_may_not_change_a_static_dimension(work: Path) -> None:
    for given in ("x=1,3,16,16", "1,3,16,16"):
        _fails_cleanly(work, "compile", "c.onnx", "--input-shape", given, "-o", "s.visc",
                       needles=(f"--input-shape {given}", "static shape [1, 3, 8, 8]"))
    _conv_model(work / "dyn.onnx", ["N", 3, 8, 8])
    _fails_cleanly(work, "compile", "dyn.onnx", "--input-shape", "x=2,3,9,9", "-o", "s.visc",
                   needles=("[?, 3, 8, 8]", "dimensions 2, 3 are"))
    proc = run_cli("compile", "dyn.onnx", "--input-shape", "x=2,3,8,8", "-o", "s.visc", cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    (work / "s.visc").unlink()


def test_debug_after_the_command(work: Path) -> None:
    proc = run_cli("compile", "nosuch.onnx", "--debug", cwd=str(work))
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ModelLoadError" in proc.stderr
    _fails_cleanly(work, "compile", "nosuch.onnx", "--input-shape", "1,3,8,8", needles=("'nosuch.onnx'",))


def test_missing_and_broken_files(work: Path) -> None:
    data = (work / "m.visc").read_bytes()
    (work / "cut.visc").write_bytes(data[: len(data) // 2])
    _fails_cleanly(work, "run", "cut.visc", needles=("'cut.visc'",))
    _fails_cleanly(work, "run", "nosuch.visc", needles=("'nosuch.visc'",))
    _fails_cleanly(work, "bench", "nosuch.onnx", needles=("'nosuch.onnx'",))
    _fails_cleanly(work, "run", "m.visc", "--input", "x=nosuch.npy", needles=("'nosuch.npy'",))


# ------------------------------------------------------------------ outputs that misled


def test_bench_replaces_zoo_placeholder_weights() -> None:
    pytest.importorskip("onnxruntime")
    path = light_model_path("squeezenet")
    proc = run_cli("bench", path, "--repeat", "1")
    assert proc.returncode == 0, proc.stderr
    assert "light_squeezenet.onnx: placeholder weights replaced by seeded random ones (seed 0" in proc.stdout
    assert "every output value" not in proc.stderr
    kept = run_cli("bench", path, "--repeat", "1", "--original-weights")
    assert kept.returncode == 0, kept.stderr
    assert "placeholder weights replaced" not in kept.stdout
    assert "visc: warning: every output value of light_squeezenet.onnx is the same" in kept.stderr


def test_compile_reports_the_records_it_applied(work: Path, tuned: Path) -> None:
    proc = run_cli("compile", "c.onnx", "--records", tuned.name, "-o", "r.visc", cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    assert "applied 1 tuned schedule from t.db (0 tasks of the model had none)" in proc.stdout
    proc = run_cli("compile", "c.onnx", "--target", "cpu", "--records", tuned.name, "-o", "r.visc", cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    assert "applied 0 tuned schedules from t.db" in proc.stdout
    assert re.search(r"holds records for opencl:.*none for this compile's device cpu:", proc.stderr), proc.stderr
    other = {"format": "visc-tuning-records", "records": [
        {"device": "opencl:Some Vendor:Some GPU", "key": "0123456789abcdef", "schedule": {"wg": 64},
         "seconds": 1e-5}]}
    (work / "other.json").write_text(json.dumps(other))
    proc = run_cli("compile", "c.onnx", "--records", "other.json", "-o", "r.visc", cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    assert "applied 0 tuned schedules from other.json (1 task of the model had none)" in proc.stdout
    assert "visc: warning: --records other.json holds records for opencl:Some Vendor:Some GPU" in proc.stderr
    (work / "r.visc").unlink()


def test_tune_table_shows_the_default_as_1(tmp_path: Path) -> None:
    """With one trial, the best is the default schedule: 1.00 default, not the ratio of two
    timings of the same schedule."""
    model = _conv_model(tmp_path / "c.onnx")
    proc = run_cli("tune", model, "--trials", "1", "--repeat", "1", "--records", str(tmp_path / "t.db"),
                   "--no-isolation")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("conv2d"))
    assert "1.00 default" in row


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_artifact_mode_follows_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    src = str(tmp_path / "m.onnx")
    _small_model(src)
    out = tmp_path / "m.visc"
    proc = subprocess.run([sys.executable, "-m", "visc.tools.visc_cli", "compile", src, "-o", str(out)],
                          capture_output=True, text=True, timeout=600, umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_compile_reports_the_memory_a_run_needs(work: Path) -> None:
    proc = run_cli("compile", "c.onnx", "-o", "mem.visc", cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    # input 1x3x8x8 and output 1x4x8x8 float32: 768 + 1024 bytes; weights 4x3x3x3 float32 (maybe packed)
    line = next(line for line in proc.stdout.splitlines() if line.startswith("memory:"))
    assert "arena 0 B, inputs/outputs 1.8 KiB, weights " in line, line
    weights = re.search(r"weights (\d+) B", line)
    assert weights and int(weights.group(1)) >= 4 * 3 * 3 * 3 * 4
    (work / "mem.visc").unlink()


def test_tuner_plot_title_does_not_overprint_a_panel(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from visc.tuner.plot import Curve, TaskCurves, plot_curves

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    name = "conv2d 1x64x56x56 64x64x3x3 -> 1x64x56x56 strides=1x1 groups=1 +epilogue relu"
    for count in (1, 2, 4):
        tasks = [TaskCurves("d", f"k{i}", name, 1e-4, {"tpe": Curve("tpe", [1e-4, 5e-5, 4e-5])}) for i in range(count)]
        plot_curves(tasks, tmp_path / f"p{count}.png",
                    title="opencl:Portable Computing Language:cpu-haswell-AMD EPYC 7B13 64-Core Processor")
        fig = figures[-1]
        renderer = fig.canvas.get_renderer()
        title = fig._suptitle.get_window_extent(renderer)
        whole = fig.bbox
        assert whole.x0 <= title.x0 and title.x1 <= whole.x1 and title.y1 <= whole.y1, "the title leaves the figure"
        for ax in fig.axes:
            if not ax.get_visible():
                continue
            assert not title.overlaps(ax.get_window_extent(renderer)), "the title overprints a panel"
            assert not title.overlaps(ax.title.get_window_extent(renderer)), "the title overprints a panel title"


def test_readme_lit_command_prints_the_count() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    command = readme.split("<!-- test-command -->", 1)[1].split("```")[1]
    lit = next(part.strip() for part in command.split("&&") if part.strip().startswith("lit "))
    assert "-q" not in lit.split()
    args = lit.split()[1:-1]  # the options, without the test folder
    suite = Path(__file__).parent.parent / "lit_tests"
    proc = subprocess.run(["lit", *args, str(suite / "ptx" / "error_arch.mlir")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"Passed\s*:\s*1\b", proc.stdout), proc.stdout
