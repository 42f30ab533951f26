from ptzjepa.config.loading import load_config
from ptzjepa.run.legacy import translate
from ptzjepa.run.machine import load_machine


def test_original_flags_map_onto_settings():
    run = translate("-rm lifelong -cb 0 -it 20 -mv 15 -un admin -pw hunter22 -ip 10.0.0.5 -ki -tp "
                    "--track_all -pubmsg -dist -dist_ip 10.0.0.9".split())
    assert run.machine == "lifelong" and run.profile == "waggle"
    config = load_config(run.profile, run.overrides)
    assert config.camera.kind == "hanwha" and config.camera.url == "http://10.0.0.5"
    assert config.camera.username == "admin"
    assert (config.capture.iterations, config.capture.movements) == (20, 15)
    assert (config.navigate.iterations, config.navigate.movements) == (20, 15)
    assert config.storage.keep_images and config.storage.track_all and config.waggle.publish
    assert config.locks.kind == "redis" and config.locks.redis_url == "redis://10.0.0.9:6379/0"
    assert run.env == {"PTZJEPA_CAMERA_PASSWORD": "hunter22"}
    assert not any("hunter22" in o for o in run.overrides)
    assert any("process list" in n for n in run.notes)


def test_defaults_and_axis_and_stored_images():
    run = translate("-rm lifelong -cb 1 -si".split())
    config = load_config(run.profile, run.overrides)
    assert config.camera.kind == "axis"
    # The original's x100 turned Axis zoom steps into Axis device units; our Axis driver converts
    # the optical factor itself, so every brand keeps zoom x1 (and PTZJEPA's pan/tilt x2).
    mod = config.navigate.modulation
    assert (mod.pan, mod.tilt, mod.zoom) == (2.0, 2.0, 1.0)
    assert not config.storage.keep_images  # PTZJEPA deleted frames unless -ki
    assert run.machine == "lifelong_stored"
    assert load_machine(run.machine, check_stages=True).initial == "train_world_model"
    for mode in ("train", "world_model_train", "dream", "agent_train", "env_interaction"):
        assert load_machine(translate(["-rm", mode]).machine).name == mode


def test_every_brand_keeps_the_same_modulation():
    for brand in ("0", "1"):
        run = translate(["-cb", brand])
        mod = load_config(run.profile, run.overrides).navigate.modulation
        assert (mod.pan, mod.tilt, mod.zoom) == (2.0, 2.0, 1.0), brand


def test_dist_maps_onto_the_shared_store_and_keeps_data_per_node():
    """-dist must not suggest a shared --data (one run per data folder; frame ids name no node):
    the world models alone are shared, in storage.shared over SFTP, from PTZJEPA's
    -dist_ip/-dist_username/-dist_host_directory (no mount)."""
    run = translate("-dist -dist_ip 10.0.0.9 -dist_username ptz -dist_host_directory /srv/wm".split())
    config = load_config(run.profile, run.overrides)
    assert config.storage.shared == "sftp://ptz@10.0.0.9/srv/wm"
    assert config.storage.data != config.storage.shared
    note = next(n for n in run.notes if n.startswith("-dist"))
    assert "point --data" not in note and "sshfs" not in note
    assert "locks.redis_url" in note and "sftp://ptz@10.0.0.9/srv/wm/world_models" in note
    assert "known_hosts" in note and "own --data" in note
