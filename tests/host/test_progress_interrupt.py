"""Training reports to ComfyUI's progress hook and stops within a step when interrupted."""
import os

import pytest

from tests.host.avi_prompts import SMALL_TRAINING, edit_prompt

TRAINING = dict(SMALL_TRAINING, epochs=6, samples_per_pair=100, batch_size=16)  # 7 steps per epoch, 42 in all


def training_prompt(tiny_ckpt, filename):
    p = edit_prompt(tiny_ckpt["eps"], size=64, training=TRAINING)
    p["save"] = {"class_type": "AVISavePhi", "inputs": {"phi": ["train", 0], "filename": filename, "if_exists": "error"}}
    return p


def test_training_reports_every_step_to_the_progress_hook(host, tiny_ckpt, every_progress_update):
    executor = host.new_executor()
    p = training_prompt(tiny_ckpt, "progress_check")
    host.run(p, outputs=["svd_x", "svd_z"], executor=executor)  # captures first, cached afterwards
    with host.progress_events() as events:
        result = host.run(p, outputs=["save"], executor=executor)
    assert "capture_x" in result.cached and "train" in result.executed
    train_events = [e for e in events if str(e.node_id) == "train"]
    assert [e.value for e in train_events] == list(range(1, 43))
    assert all(e.total == 42 for e in train_events)


def test_interrupt_stops_training_within_a_step_and_writes_no_file(host, tiny_ckpt, every_progress_update):
    import folder_paths
    from devkit.comfy_host import ExecutionInterrupted

    folder = folder_paths.get_folder_paths("avi")[0]
    before = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    executor = host.new_executor()
    p = training_prompt(tiny_ckpt, "interrupted")
    host.run(p, outputs=["svd_x", "svd_z"], executor=executor)
    with host.progress_events() as events, host.interrupt_after(events=5) as state:
        with pytest.raises(ExecutionInterrupted):
            host.run(p, outputs=["save"], executor=executor)
    assert state["fired"]
    train_events = [e.value for e in events if str(e.node_id) == "train"]
    assert train_events == [1, 2, 3, 4, 5], "no step runs after the interrupt"
    after = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    assert after == before, "nothing is saved, not even a partial file"

    result = host.run(p, outputs=["save"], executor=executor)  # the flag is cleared: the next run completes
    assert result.output("save") == "interrupted.safetensors"
