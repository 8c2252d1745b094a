"""Runner output for the fake adb, shaped after the runners' own log statements.

NOT captured from a phone (none exists here): the lines follow the format strings in ExecuTorch's
``examples/portable/executor_runner/executor_runner.cpp`` ("Model loaded in %f ms.",
"Iteration %u of %u: %f ms", "Model executed successfully %u time(s) in %f ms.") and LiteRT's
``benchmark_model`` ("count=.. first=.. curr=.. min=.. max=.. avg=.. std=.. p5=.. median=.. p95=..",
"Inference timings in us: Init: .., First inference: .., Warmup (avg): .., Inference (avg): ..").
"""

from __future__ import annotations


def executor_runner(entry: str, iters_ms: list[float], load_ms: float = 12.5) -> str:
    n = len(iters_ms)
    lines = [
        "I 00:00:00.000512 executorch:executor_runner.cpp:150] Model file /data/local/tmp/rsnet_edge/m.pte is loaded.",
        "I 00:00:00.000601 executorch:executor_runner.cpp:159] Running method " + entry,
        f"I 00:00:00.013100 executorch:executor_runner.cpp:231] Model loaded in {load_ms:.6f} ms.",
    ]
    for i, ms in enumerate(iters_ms, 1):
        lines.append(f"I 00:00:00.0{20 + i:04d} executorch:executor_runner.cpp:330] Iteration {i} of {n}: "
                     f"{ms:.6f} ms")
    lines.append(f"I 00:00:00.090000 executorch:executor_runner.cpp:341] Model executed successfully "
                 f"{n} time(s) in {sum(iters_ms):.6f} ms.")
    lines.append("I 00:00:00.090100 executorch:executor_runner.cpp:350] 1 outputs: ")
    lines.append("OutputX 0: tensor(sizes=[1, 10], [0.1, -0.2, ...])")
    return "\n".join(lines) + "\n"


def executor_runner_old(entry: str, n: int, total_ms: float) -> str:
    """An older runner: only the total line."""
    return (f"I 00:00:00.000601 executorch:executor_runner.cpp:120] Running method {entry}\n"
            f"I 00:00:00.090000 executorch:executor_runner.cpp:200] Model executed successfully "
            f"{n} time(s) in {total_ms:.6f} ms.\n")


def benchmark_model(entry: str, init_us: float, first_us: float, median_us: float, p95_us: float,
                    avg_us: float, runs: int = 50) -> str:
    return "\n".join([
        "INFO: STARTING!",
        "INFO: Log parameter values verbosely: [0]",
        f"INFO: Num runs: [{runs}]",
        "INFO: Graph: [/data/local/tmp/rsnet_edge/m.tflite]",
        f"INFO: Signature to run: [{entry}]",
        "INFO: Use xnnpack: [1]",
        "INFO: Loaded model /data/local/tmp/rsnet_edge/m.tflite",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        f"INFO: The input model file size (MB): 2.1",
        f"INFO: Initialized session in {init_us / 1000:.3f}ms.",
        "INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.",
        f"INFO: count=5 first={first_us:.0f} curr={avg_us:.0f} min={median_us * 0.9:.0f} max={first_us:.0f} "
        f"avg={avg_us * 1.1:.1f} std=300 p5={median_us * 0.9:.0f} median={median_us * 1.05:.0f} p95={first_us:.0f}",
        "",
        f"INFO: Running benchmark for at least {runs} iterations and at least 1 seconds but terminate if exceeding 150 seconds.",
        f"INFO: count={runs} first={median_us:.0f} curr={median_us:.0f} min={median_us * 0.9:.0f} "
        f"max={p95_us * 1.2:.0f} avg={avg_us:.1f} std=120 p5={median_us * 0.92:.0f} median={median_us:.0f} "
        f"p95={p95_us:.0f}",
        "",
        f"INFO: Inference timings in us: Init: {init_us:.0f}, First inference: {first_us:.0f}, "
        f"Warmup (avg): {avg_us * 1.1:.1f}, Inference (avg): {avg_us:.1f}",
        "INFO: Note: as the benchmark tool itself affects memory footprint, the following is only "
        "APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at "
        "your discretion.",
        "INFO: Memory footprint delta from the start of the tool (MB): init=9.5 overall=14.25",
    ]) + "\n"


BATTERY = """Current Battery Service state:
  AC powered: false
  USB powered: true
  Wireless powered: false
  Max charging current: 500000
  status: 2
  health: 2
  present: true
  level: 73
  scale: 100
  voltage: 4123
  temperature: 312
  technology: Li-ion
"""

THERMAL = """IsStatusOverride: false
ThermalEventListeners:
	callbacks: 1
ThermalStatusListeners:
	callbacks: 1
Thermal Status: 2
Cached temperatures:
	Temperature{mValue=38.5, mType=3, mName=skin, mStatus=2}
HAL Ready: true
"""
