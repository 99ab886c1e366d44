"""The workflow's planning (mrisr.plan), directly: no Snakemake run. Expected values are computed here from the
config by hand, not by the plan's own helpers."""

import ast
import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mrisr.cli import parser
from mrisr.commands import COMMANDS
from mrisr.config import merge, validate
from mrisr.errors import ConfigError
from mrisr.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "workflow" / "rules"
#: common.smk's table of results paths, read from it
PATHS = ast.literal_eval(re.search(r"^PATHS = (\{.*?^\})", (RULES / "common.smk").read_text(), re.S | re.M).group(1))


def _config(*overlays, **changes) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for overlay in overlays:
        merge(config, yaml.safe_load((ROOT / overlay).read_text()))
    merge(config, changes)
    return validate(config)


def _plan(*overlays, **changes) -> Plan:
    return Plan(_config(*overlays, **changes), PATHS, ROOT)


def files(*unnamed, **named):
    """A job's input or output as Snakemake gives it to a parameter function: files by name or by position
    (imported here: the planning test's interpreter must not load Snakemake)."""
    from snakemake.iocontainers import InputFiles

    return InputFiles(unnamed) if unnamed else InputFiles(fromdict=named)


def _args(command: str, options: str) -> dict:
    """A job's options read back by the CLI's own parser (``--threads``, where the command takes it, is the rule's)."""
    threads = ["--threads", "1"] if "--threads" in {o.flag for o in COMMANDS[tuple(command.split())][2]} else []
    return vars(parser().parse_args([*command.split(), *shlex.split(options), *threads]))


def test_planning_imports_no_network_or_statistics_library():
    """What every snakemake start pays: the plan of the paper overlays made in a fresh interpreter."""
    code = ("import sys, yaml; from mrisr.config import validate; from mrisr.plan import Plan; "
            "from tests.test_plan import _plan; "
            "p = _plan('workflow/configs/authors.yaml', 'workflow/configs/hcp.yaml'); p.targets(); "
            "heavy = [m for m in ('torch', 'torchio', 'monai', 'pingouin', 'snakemake', 'nibabel', 'pandas') "
            "if m in sys.modules]; print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_subjects_split_as_the_seeded_shuffle_and_the_hcp_list_says():
    plan = _plan()
    ids = [f"{i:02d}" for i in range(1, 11)]
    assert plan.study.subjects() == ids and plan.study.subjects("demo_ood") == ids[:6]
    split = plan.study.splits()
    assert sorted(split) == ids and sorted(split.values()).count("test") == 6 and list(split.values()).count("val") == 1
    assert set(plan.study.splits("demo_ood").values()) == {"test"}  # out-of-sample: test data only
    hcp = _plan("workflow/configs/authors.yaml", "workflow/configs/hcp.yaml")
    rows = [line.split("\t") for line in (ROOT / "workflow/configs/hcp_subjects.tsv").read_text().splitlines()
            if not line.startswith("#")][1:]
    assert hcp.study.subjects_in("train") == sorted(s for s, part in rows if part == "train")
    assert hcp.study.subjects_in("test") == sorted(s for s, part in rows if part == "test")


def test_variant_facts_and_the_pretrained_generator_key():
    plan = _plan()
    config = plan.study.config
    assert not plan.study.learned("trilinear") and plan.study.start("trilinear") == ""
    esrgan = config["variants"]["esrgan"]
    parts = {"generator": esrgan["generator"], "pixel_loss": esrgan["losses"]["pixel_loss"]}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8]
    key = f"rrdb-{esrgan['losses']['pixel_loss']}-{digest}"
    assert plan.study.generator_key("esrgan") == key
    assert plan.study.start("esrgan") == f"the pixel-loss generator {key} ({config['pretrain']['steps']} steps)"
    assert set(plan.pretrain.generators()) == {plan.study.generator_key(v) for v in config["variants"]
                                                 if config["variants"][v].get("start") == "pretrained"} | {
        f"{key}@{setting}" for setting in config["field"]["settings"] if setting != config["train"]["degradation"]}
    authors = _plan("workflow/configs/authors.yaml")
    assert authors.pretrain.generators() == {}  # the authors train every generator from scratch
    assert authors.study.start("esrgan") == "scratch"


def test_train_job_inputs_settings_and_provenance():
    plan = _plan()
    config, wildcards = plan.study.config, SimpleNamespace(dataset="demo", variant="threeplayer")
    train = sorted(s for s, part in plan.study.splits().items() if part == "train")
    inputs = plan.train.input(wildcards)
    assert inputs["hr"] == [f"results/prepare/demo/sub-{s}/sub-{s}_T1w.nii.gz" for s in train]
    assert inputs["start"] == f"results/pretrain/demo/{plan.study.generator_key('threeplayer')}/model.safetensors"
    args = _args("train", plan.train.options(wildcards, files(**inputs), files(model="results/train/demo/t p/model.safetensors")))
    assert args["provenance"] == {
        "variant": "threeplayer", "dataset": "demo", "subjects": train,
        "preprocessing": {k: config["prepare"][k] for k in ("crop", "margin", "normalise", "intensities", "normalise_first")}}
    settings = args["settings"]
    assert settings["steps"] == config["train"]["steps"] and settings["scale"] == 2 and settings["seed"] == 0
    assert settings["degradation"] == {"method": "nearest", "blur_fwhm": 2.0, "profile": "box", "blur_sigma": 1.0}
    assert set(settings) == {"steps", "batch_size", "patch_size", "checkpoint_every", "seed", "precision", "degradation",
                             "scale", "memory_format", "patch_sampling", "patch_stride", "window_fraction", "epochs",
                             "cudnn_benchmark", "tf32", "compile", "shared_discriminator_pass", "relativistic_mean"}
    assert all(settings[k] == config["train"][k] for k in settings if k not in ("degradation", "scale", "seed"))
    assert args["hr"] == inputs["hr"] and args["start"] == inputs["start"] and args["variant"]["kind"] == "gan"
    assert args["out_dir"] == "results/train/demo/t p" and args["processes"] == config["train"]["gpus"]
    pretrain = SimpleNamespace(dataset="demo", generator=plan.study.generator_key("threeplayer"))
    assert "lr" not in settings and plan.pretrain.settings(pretrain)["lr"] == config["pretrain"]["lr"]
    assert plan.pretrain.settings(pretrain)["batch_size"] == config["train"]["batch_size"]
    authors, scratch = _plan("workflow/configs/authors.yaml"), SimpleNamespace(dataset="demo", variant="wgan_gp")
    options = authors.train.options(scratch, files(**authors.train.input(scratch)), files(model="m/model.safetensors"))
    assert "--start" not in options and _args("train", options)["start"] is None


def test_feature_extractor_weights_are_a_download_when_named_so():
    plan = _plan(downloads={"medicalnet": {"url": "http://127.0.0.1:9/w.pth", "sha256": "0" * 64}},
                 variants={"threeplayer": {"feature_extractor": {"weights": "medicalnet"}}})
    wildcards = SimpleNamespace(dataset="demo", variant="threeplayer")
    assert plan.train.input(wildcards)["weights"] == "results/fetch/downloads/medicalnet"
    variant = plan.train.variant(wildcards)
    assert variant["feature_extractor"]["weights"] == "results/fetch/downloads/medicalnet"
    assert "weights" not in plan.train.input(SimpleNamespace(dataset="demo", variant="esrgan"))


def test_lr_sets_and_their_noise():
    plan = _plan()
    noisy = SimpleNamespace(degradation="nearest-noise0.1")
    args = _args("degrade", plan.degrade.options(noisy, files(hr="hr.nii.gz"), files(lr="lr.nii.gz")))
    assert args["degradation"]["method"] == "nearest" and args["noise_sigma"] == 0.1 and args["scale"] == 2
    assert (args["hr"], args["out"], args["noise_seed"]) == (["hr.nii.gz"], ["lr.nii.gz"], plan.study.config["seed"])
    assert plan.papers.noise_degradation(0) == "nearest" and plan.papers.noise_degradation(0.05) == "nearest-noise0.05"
    with pytest.raises(ConfigError, match="no entry for the LR set 'kspace'"):
        plan.degrade.options(SimpleNamespace(degradation="kspace"), files(hr="h"), files(lr="l"))


FIELD = {"degradations": {"x4_blur": {"method": "blur", "scale": 4},
                          "thick": {"method": "slice_profile", "scale": [1, 1, 4]}},
         "field": {"settings": ["nearest", "x4_blur", "thick"], "variants": ["trilinear", "esrgan"]}}


def test_field_settings_train_each_learned_variant_once_per_setting():
    """The run's own setting reuses its models; each other setting trains <variant>@<setting> from a pixel-loss
    generator of its own, on its own LR and scale; interpolation needs no model; the main tables keep to the run's
    LR sets."""
    plan = _plan(**FIELD)
    study, key, config = plan.study, plan.study.generator_key("esrgan"), plan.study.config
    assert study.field_variants() == ["trilinear", "esrgan", "esrgan@x4_blur", "esrgan@thick"]
    assert plan.papers.field_table_input()["metrics"] == [f"results/evaluate/demo/{s}/{v}.csv" for s, v in (
        ("nearest", "trilinear"), ("nearest", "esrgan"), ("x4_blur", "trilinear"), ("x4_blur", "esrgan@x4_blur"),
        ("thick", "trilinear"), ("thick", "esrgan@thick"))]
    thick = SimpleNamespace(dataset="demo", variant="esrgan@thick", degradation="thick", subject="01")
    settings = plan.train.settings(thick)
    assert settings["scale"] == [1, 1, 4] and settings["degradation"]["method"] == "slice_profile"
    assert plan.train.input(thick)["start"] == f"results/pretrain/demo/{key}@thick/model.safetensors"
    assert plan.train.variant(thick) == plan.train.variant(SimpleNamespace(dataset="demo", variant="esrgan"))
    x4 = plan.pretrain.settings(SimpleNamespace(generator=f"{key}@x4_blur"))
    assert x4["scale"] == 4 and x4["steps"] == (plan.study.field["pretrain_steps"] or config["pretrain"]["steps"])
    assert plan.pretrain.settings(SimpleNamespace(generator=key))["steps"] == config["pretrain"]["steps"]
    assert plan.study.start("esrgan@x4_blur").endswith(f"({x4['steps']} steps)")
    assert {f"{key}@x4_blur", f"{key}@thick", key} <= set(plan.pretrain.generators())
    assert plan.super_resolve.input(thick)["model"] == "results/train/demo/esrgan@thick/model.safetensors"
    trilinear = SimpleNamespace(dataset="demo", variant="trilinear", degradation="thick", subject="01")
    sr = _args("super-resolve", plan.super_resolve.options(trilinear, files(**plan.super_resolve.input(trilinear)),
                                                           files(sr="sr.nii.gz")))
    assert (sr["method.interpolate"], sr["method.scale"], sr["method.model"]) == ("trilinear", [1, 1, 4], None)
    assert sr["method.lr_grid"] == "slab"  # a slice profile's LR: each thick voxel its slab's
    x4_blur = SimpleNamespace(degradation="x4_blur")
    assert _args("degrade", plan.degrade.options(x4_blur, files(hr="h"), files(lr="l")))["scale"] == 4
    targets = plan.targets()
    assert {f"results/papers/demo/field/settings.{ext}" for ext in ("csv", "md", "png")} <= set(targets)
    assert not [t for t in targets if "/x4_blur/" in t or "/thick/" in t]  # only through the settings table
    assert "results/papers/demo/field/settings.csv" not in _plan(field={"settings": []}).targets()


def test_field_settings_name_known_entries_and_fit_the_patches():
    with pytest.raises(ConfigError, match="field.settings.*x8"):
        _plan(field={"settings": ["x8"]})
    with pytest.raises(ConfigError, match="field.published"):
        _plan(degradations=FIELD["degradations"],
              field={**FIELD["field"], "published": [{"method": "M", "setting": "x2", "source": "s"}]})
    with pytest.raises(ConfigError, match="train.patch_size.*factor 3 of the setting 'x3'"):
        _plan(degradations={"x3": {"method": "nearest", "scale": [1, 1, 3]}}, field={"settings": ["x3"]},
              train={"patch_size": 32})


def test_paper_tables_figures_and_targets():
    plan = _plan()
    config = plan.study.config
    methods = [m for m in config["papers"]["threeplayer"]["methods"] if m in config["variants"]]
    table = SimpleNamespace(paper="threeplayer", table="method_comparison")
    assert plan.papers.table_input(table) == {"metrics": [f"results/evaluate/demo/nearest/{m}.csv" for m in methods]}
    items = {item.rule: item for item in plan.papers.items()}
    output = files(csv="t.csv", md="t.md")
    args = _args("papers method-table", items["method_table"].options(table, ["a.csv"] * len(methods), output))
    records = args["inputs"]
    assert (args["out_csv"], args["out_md"]) == ("t.csv", "t.md")
    assert args["reference"] == config["variants"][config["papers"]["threeplayer"]["reference"]].get("label", "threeplayer")
    assert [r["label"] for r in records] == [config["variants"][m].get("label", m) for m in methods]
    assert [r["start"] == "" for r in records] == [config["variants"][m]["kind"] != "gan" for m in methods]
    out_of_sample = SimpleNamespace(paper="threeplayer", table="method_comparison_out_of_sample")
    assert plan.papers.table_dataset(out_of_sample) == "demo_ood" and plan.papers.table_n(out_of_sample) == 6
    figure = items["zoom_profile"].options(SimpleNamespace(paper="disgan"), files(**plan.papers.sr_figure_input(
        SimpleNamespace(paper="disgan"))), files(png="z.png", pdf="z.pdf"))
    args = _args("papers zoom-profile", figure)
    assert [r["label"] for r in args["inputs"]] == ["LR", *plan.papers.methods("disgan"), "GT"]
    assert args["length"] == config["figures"]["profile_length"] and args["scale"] == config["scale"]
    assert {item.rule for item in plan.papers.items()} >= {"method_table", "sr_comparison", "before_after"}
    assert all((ROOT / "workflow/report" / f"{item.rule}.rst").is_file() for item in plan.papers.items())
    targets = plan.targets()
    assert "results/papers/demo/augment/segmentation.png" in targets
    assert "results/papers/demo/usage/before_after.png" in targets
    assert len(targets) == len(set(targets))
    sr = [t for t in targets if t.startswith("results/super_resolve/")]
    outside = {"eclare", "eclare_standin"}  # they run in thick_slice only
    assert plan.study.main_lr_sets() == ["nearest"] and not outside & set(plan.study.run_variants)
    assert len(sr) == (len(config["variants"]) - len(outside)) * len(plan.study.subjects_in("test"))
    alone = _plan(field={"settings": []})  # an entry at another scale is never given to the run's models
    assert alone.study.main_lr_sets() == ["nearest"] and not [t for t in alone.targets() if "x4_blur" in t]


def test_segmentation_asked_for_without_label_maps_is_refused(tmp_path):
    for s in ("a1", "b2", "c3", "d4"):
        for kind in ("T1w", "mask"):
            (tmp_path / f"sub-{s}_{kind}.nii.gz").touch()
    lab = {"dataset": "lab", "datasets": {"lab": {"source": "folder", "path": str(tmp_path)}},
           "papers": {"threeplayer": {"out_of_sample": None}}}
    assert not _plan(**lab).segment.runs
    with pytest.raises(ConfigError, match="dataset 'lab' has no label maps"):
        _plan(**lab, segmentation={"enabled": True})


def _defined_names(text: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z_]\w*)\s*=", text, flags=re.M))


def test_rule_files_hold_rules_few_short_lambdas_and_no_other_files_names():
    files = {p.stem: p.read_text() for p in RULES.glob("*.smk")}
    lambdas = [(name, line) for name, text in files.items() for line in text.splitlines() if "lambda" in line]
    assert len(lambdas) <= 10, lambdas
    for name, text in files.items():
        for match in re.finditer(r"lambda[^:]*:", text):
            body = text[match.end():].split("\n")
            assert len(body) < 3 or not body[1].startswith(" " * 12), f"{name}: a lambda of more than 3 lines"
        if name == "common":
            continue
        for other, other_text in files.items():
            if other in (name, "common"):
                continue
            used = {n for n in _defined_names(other_text) if re.search(rf"\b{n}\b", text)}
            assert not used, f"{name}.smk uses {sorted(used)} defined in {other}.smk"


def test_options_reach_the_shell_quoted_and_only_when_set():
    plan = _plan(datasets={"hcp": {"source": "hcp", "subjects": ["100307"], "endpoint_url": "http://127.0.0.1:9/s 3"}},
                 downloads={"w": {"url": "http://127.0.0.1:9/w.pth", "sha256": "a" * 64, "size": 10}})
    hcp = plan.fetch.hcp_options(SimpleNamespace(dataset="hcp", subject="100307"), files(t1w="r/sub-100307/T1w.nii.gz"))
    assert hcp == ("--subject 100307 --out-dir r/sub-100307 --bucket hcp-openaccess --prefix HCP_1200 "
                   "--endpoint-url 'http://127.0.0.1:9/s 3'")
    download = plan.fetch.download_options(SimpleNamespace(name="w"), files(out="d/w"))
    assert download == f"--url http://127.0.0.1:9/w.pth --sha256 {'a' * 64} --size 10 --out d/w"  # no --md5: unset
    assert plan.fetch.dataset_pattern("hcp") == "hcp" and plan.fetch.dataset_pattern("ixi") == "(?!)"
    assert plan.fetch.demo_seed("demo_ood") == 1  # its own seed over the top-level one
    learned = SimpleNamespace(variant="esrgan", degradation="nearest")
    interpolated = SimpleNamespace(variant="trilinear", degradation="nearest")
    job = files(lr=["l r.nii.gz"], reference=["ref.nii.gz"], model="m 1.pt")
    options = plan.super_resolve.options(learned, job, files(sr="o.nii.gz"))
    assert "--model 'm 1.pt'" in options and "'l r.nii.gz' o.nii.gz" in options
    args = _args("super-resolve", options)
    assert args["scan.prepared"] and args["inputs"] == ["l r.nii.gz"] and args["output"] == "o.nii.gz"
    inference = plan.study.config["inference"]
    assert [args[f"inference.{k}"] for k in ("tile", "halo", "reconstruct_tile", "batch")] == \
        [inference[k] for k in ("tile", "halo", "reconstruct_tile", "batch")]
    assert args["inference.precision"] == inference["precision"] or plan.study.config["train"]["precision"]
    pasted = _args("super-resolve", plan.super_resolve.pasted_options(learned, job, files(sr="p.nii.gz")))
    assert pasted["inference.pasted"] and pasted["inference.tile"] == plan.study.config["papers"]["disgan"]["pasted_tile"]
    args = _args("super-resolve", plan.super_resolve.options(interpolated, job, files(sr="o.nii.gz")))
    assert (args["method.interpolate"], args["method.scale"], args["scan.prepared"]) == ("trilinear", 2, False)
    assert args["method.lr_grid"] == "corner"  # decimation's LR: voxel i at HR voxel 2i
    assert "model" not in plan.super_resolve.input(SimpleNamespace(dataset="demo", degradation="nearest",
                                                                   subject="01", variant="trilinear"))


def test_evaluation_and_segmentation_inputs_are_the_test_and_training_subjects():
    plan = _plan(lpips={"url": "http://127.0.0.1:9/a.pth", "sha256": "b" * 64})
    test = sorted(s for s, part in plan.study.splits().items() if part == "test")
    train = sorted(s for s, part in plan.study.splits().items() if part == "train")
    job = SimpleNamespace(dataset="demo", degradation="nearest-noise0.1", variant="disgan")
    inputs = plan.evaluate.input(job)
    assert inputs["pred"] == [f"results/super_resolve/demo/nearest-noise0.1/disgan/sub-{s}_T1w.nii.gz" for s in test]
    assert inputs["mask"] == [f"results/prepare/demo/sub-{s}/sub-{s}_mask.nii.gz" for s in test]
    args = _args("evaluate", plan.evaluate.options(job, files(**inputs), files(csv="m.csv")))
    assert (args["lpips.dir"], args["lpips.step"], args["lpips.sha256"]) == ("results/fetch/lpips", 4, "b" * 64)
    assert args["pred"] == inputs["pred"] and args["subjects"] == test and args["not_computed_reason"] is None
    unscored = _plan(lpips={"enabled": False})
    assert "--lpips" not in unscored.evaluate.options(job, files(**unscored.evaluate.input(job)), files(csv="m.csv"))
    arm = plan.segment.train_input(SimpleNamespace(dataset="demo", arm="real+sr"))
    sr_variant = plan.study.config["segmentation"]["sr_variant"]
    assert arm["sr"] == [f"results/super_resolve/demo/nearest/{sr_variant}/sub-{s}_T1w.nii.gz" for s in train]
    assert arm["label"] == [f"results/prepare/demo/sub-{s}/sub-{s}_dseg.nii.gz" for s in train]
    assert "sr" not in plan.segment.train_input(SimpleNamespace(dataset="demo", arm="real"))
    seeded = SimpleNamespace(dataset="demo", arm="real+sr", seed="2")
    args = _args("segment train", plan.segment.train_options(seeded, files(**arm), files(model="s/model.pt")))
    assert args["settings"]["seed"] == 2 and args["sr"] == arm["sr"] and args["out_dir"] == "s"
    assert args["settings"]["steps"] == plan.study.config["segmentation"]["steps"]


def test_an_outside_variant_runs_in_its_settings_with_its_command_filled_and_its_environment_first():
    plan = _plan("workflow/configs/eclare.yaml")
    study, external = plan.study, plan.external
    assert [s for s, v in study.field_cells() if v == "eclare"] == ["thick_slice"]
    assert study.environment_file("eclare") == str(ROOT / "envs/eclare.yaml")
    job = SimpleNamespace(dataset="demo", degradation="thick_slice", variant="eclare", subject="03")
    inputs = external.run_input(job)
    assert inputs == {"lr": "results/degrade/demo/thick_slice/sub-03_T1w.nii.gz",
                      "environment": "results/external/env/eclare"}
    command = external.command(job, SimpleNamespace(**inputs), ["results/external/o u t"])
    assert command == ("run-eclare --in-fpath results/degrade/demo/thick_slice/sub-03_T1w.nii.gz --out-dir "
                       "'results/external/o u t' --n-patches 2560 --relative-slice-thickness 4 --gpu-id -1")
    assert external.search_path(job, SimpleNamespace(**inputs)) == \
        f'PATH={Path("results/external/env/eclare").resolve()}/venv/bin:"$PATH"'
    sr = plan.super_resolve.input(job)
    assert sr["external"] == ["results/external/demo/thick_slice/eclare/sub-03"]
    args = _args("super-resolve", plan.super_resolve.options(job, files(**sr), files(sr="o.nii.gz")))
    assert (args["method.external"], args["method.scale"]) == (["results/external/demo/thick_slice/eclare/sub-03"],
                                                               [1, 1, 4])
    conda = Plan(_config("workflow/configs/eclare.yaml"), PATHS, ROOT, use_conda=True)  # Snakemake builds the env; nothing to find or wait for
    assert "environment" not in conda.external.run_input(job) and conda.external.search_path(job, None) == ""
    assert conda.external.conda_file(job) == str(ROOT / "envs/eclare.yaml")


def test_an_outside_command_with_a_placeholder_it_cannot_fill_is_refused_with_the_fix():
    plan = _plan(variants={"eclare": {"command": "run-eclare --x {nonsense}"}})
    job = SimpleNamespace(dataset="demo", degradation="thick_slice", variant="eclare", subject="03")
    with pytest.raises(ConfigError, match=r"variants.eclare.command.*\{lr\}"):
        plan.external.command(job, SimpleNamespace(lr="lr.nii.gz"), ["out"])


def test_an_outside_variant_without_its_environment_is_scored_as_not_computed_without_its_volumes(tmp_path):
    plan = _plan()
    folders = {"eclare": tmp_path / "eclare"}  # what the checkpoint built: a status that says why not
    folders["eclare"].mkdir()
    (folders["eclare"] / "status.json").write_text(json.dumps({"available": False, "reason": "eclare: offline"}))
    plan.study.ask_environments(SimpleNamespace(get=lambda environment: SimpleNamespace(output=[folders[environment]])))
    job = SimpleNamespace(dataset="demo", degradation="thick_slice", variant="eclare")
    inputs = plan.evaluate.input(job)
    assert "pred" not in inputs and inputs["environment"] == "results/external/env/eclare"
    options = plan.evaluate.options(job, files(**inputs), files(csv="e.csv"))
    assert "--not-computed 'its environment could not be installed: eclare: offline'" in options
    assert _args("evaluate", options)["pred"] is None
    trilinear = SimpleNamespace(dataset="demo", degradation="thick_slice", variant="trilinear")
    assert "--pred results/super_resolve/demo/thick_slice/trilinear/" in plan.evaluate.options(
        trilinear, files(**plan.evaluate.input(trilinear)), files(csv="t.csv"))


def test_a_variant_s_settings_must_be_degradations():
    with pytest.raises(ConfigError, match="variants.eclare.settings"):
        _config(variants={"eclare": {"settings": ["thin_slice"]}})


def test_the_plan_document_is_stable_and_says_what_the_config_runs():
    from mrisr.plan.describe import as_text, describe

    plan = _plan(**FIELD)
    described = describe(plan)
    assert as_text(described, "yaml") == as_text(describe(_plan(**FIELD)), "yaml")  # the same config, the same text
    assert yaml.safe_load(as_text(described, "yaml")) == json.loads(as_text(described, "json"))
    splits = plan.study.splits()
    assert described["datasets"]["demo"]["train"] == [s for s, part in splits.items() if part == "train"]
    assert set(described["training"]["train"]) == set(plan.study.trained_variants())
    assert described["training"]["train"]["esrgan@thick"]["setting"] == "thick"
    key = plan.study.generator_key("esrgan")
    assert described["training"]["pretrain"][f"{key}@x4_blur"]["steps"] == plan.study.pretrain_steps("x4_blur")
    assert described["lr_sets"]["thick"] == {"method": "slice_profile", "scale": "x1x1x4", "noise_sigma": 0.0}
    assert described["jobs"]["train"] == len(plan.study.trained_variants())
    assert described["jobs"]["total"] == sum(n for rule, n in described["jobs"].items() if rule != "total")
    assert described["outputs"]["field"] == ["settings.csv", "settings.md", "settings.png"]
    seeds = plan.study.config["segmentation"]["seeds"]
    more = describe(_plan(**FIELD, segmentation={"seeds": [*seeds, max(seeds) + 1]}))
    assert more["jobs"]["segment_train"] == described["jobs"]["segment_train"] + 2  # one seed more per arm


@pytest.mark.parametrize("request_kind", ["gpu", "gres"])
def test_each_variant_trains_on_its_own_batch_and_gpus(request_kind):
    """authors.yaml + hcp.yaml: the MIDL 2022 and WGAN-GP scripts' batch 4 on one GPU, the DDP scripts' 8 over 2;
    the job's processes and the GPUs it asks SLURM for follow the variant, DISGAN keeps a quarter of the windows."""
    plan = _plan("workflow/configs/authors.yaml", "workflow/configs/hcp.yaml", slurm={"gpu_request": request_kind})
    expected = {"mrsrgan": (4, 1, 1.0), "wgan_gp_rrdb": (4, 1, 1.0), "threeplayer": (8, 2, 1.0),
                "disgan": (8, 2, 0.25), "disgan_no_dwt": (8, 2, 0.25)}
    resources = plan.train.resources()
    for variant, (batch, gpus, fraction) in expected.items():
        wildcards = SimpleNamespace(dataset="hcp", variant=variant)
        settings = plan.train.settings(wildcards)
        assert (settings["batch_size"], settings["window_fraction"], settings["epochs"]) == (batch, fraction, 20)
        inputs = files(hr=["a.nii.gz", "b.nii.gz"])
        args = _args("train", plan.train.options(wildcards, inputs, files(model="results/train/hcp/v/model.safetensors")))
        assert args["processes"] == gpus
        asked = {key: value(wildcards) for key, value in resources.items()}
        assert asked == ({"gpu": gpus} if request_kind == "gpu" else {"gres": f"gpu:{gpus}"})


@pytest.mark.parametrize("overlays", [
    (), ("authors.yaml",), ("hcp.yaml",), ("mtvnet_x4.yaml",), ("hcp.yaml", "ixi.yaml"), ("hcp.yaml", "mtvnet_x4.yaml"),
    ("hcp.yaml", "ixi.yaml", "mtvnet_x4.yaml"), ("authors.yaml", "hcp.yaml"), ("authors.yaml", "hcp.yaml", "ixi.yaml")])
def test_every_overlay_and_documented_combination_plans(overlays):
    """Each file of workflow/configs/ and each combination the docs show: valid, and every target planned."""
    plan = _plan(*(f"workflow/configs/{name}" for name in overlays))
    assert plan.targets()


@pytest.mark.parametrize("overlays", [("ixi.yaml",), ("ixi.yaml", "mtvnet_x4.yaml")])
def test_an_out_of_sample_set_the_config_does_not_define_is_refused(overlays):
    """ixi.yaml names HCP as its out-of-sample set, which hcp.yaml defines: alone it is refused, naming the key and
    the fix, before planning (not a KeyError from it)."""
    with pytest.raises(ConfigError, match=r"'papers\.threeplayer\.out_of_sample'.*hcp\.yaml"):
        _config(*(f"workflow/configs/{name}" for name in overlays))


def test_anatomy_segments_the_method_and_settings_tables_volumes_against_the_hr_jobs():
    plan = _plan()
    config = plan.study.config
    test = sorted(s for s, part in plan.study.splits().items() if part == "test")
    main = [("nearest", v) for v in config["papers"]["threeplayer"]["methods"]]
    field = [(s, v if v in ("trilinear", "bspline", "nearest_neighbour") or config["variants"][v]["kind"] == "external"
              else f"{v}@{s}" if s != "nearest" else v)
             for s in config["field"]["settings"] for v in config["field"]["variants"]
             if config["variants"][v].get("settings") in (None, []) or s in config["variants"][v]["settings"]]
    assert plan.anatomy.cells == list(dict.fromkeys(main + field))
    assert ("thick_slice", "eclare_standin") in plan.anatomy.cells and ("nearest", "eclare_standin") not in plan.anatomy.cells
    job = SimpleNamespace()  # a setting's job: no wildcards
    inputs = plan.anatomy.set_input("x4_blur")(job)
    x4 = [v for s, v in plan.anatomy.cells if s == "x4_blur"]
    assert inputs["image"] == [f"results/super_resolve/demo/x4_blur/{v}/sub-{s}_T1w.nii.gz" for v in x4 for s in test]
    assert inputs["model"] == f"results/segment/demo/real/seed-{config['segmentation']['seeds'][0]}/model.pt"
    assert inputs["reference"] == "results/anatomy/demo/hr/volumes.csv"
    outputs = plan.anatomy.outputs("x4_blur")
    assert [o for o in outputs if o.endswith(".csv")] == [f"results/anatomy/demo/sr/x4_blur/{v}/volumes.csv" for v in x4]
    assert len(outputs) == len(x4) * (1 + 2 * len(test))  # each cell's table and label maps, per segmenter
    args = _args("anatomy", plan.anatomy.set_options("x4_blur")(job, files(**inputs), files(*outputs)))
    assert args["cells"] == [{"image": [f"results/super_resolve/demo/x4_blur/{v}/sub-{s}_T1w.nii.gz" for s in test],
                              "out": f"results/anatomy/demo/sr/x4_blur/{v}/volumes.csv"} for v in x4]
    assert args["subjects"] == test and args["reference_dir"] == "results/anatomy/demo/hr"
    assert args["segmenters.names"] == ["network", "atropos"] and args["segmenters.model"] == inputs["model"]
    assert (args["segmenters.iterations"], args["segmenters.mrf_weight"]) == (5, 0.2)
    assert "results/papers/demo/anatomy/worst_slice.png" in plan.targets()
    unlabelled = _plan(segmentation={"enabled": False})  # no segment stage: Atropos alone
    assert unlabelled.anatomy.segmenters == ["atropos"] and "model" not in unlabelled.anatomy.reference_input(job)
    assert not _plan(anatomy={"segmenters": []}).anatomy.targets()


def test_one_super_resolve_job_takes_a_subject_sets_volumes_each_onto_its_own_reference():
    """Each subject of each prepared dataset is in exactly one set (a split), and a set's job passes every LR volume
    with its own HR reference, in one order, into the folder of its outputs."""
    plan = _plan()
    study, stage = plan.study, plan.super_resolve
    by_set = {(s.dataset, s.split): s.subjects for s in study.subject_sets}
    for dataset in study.datasets():
        assert sorted(s for (d, _), subjects in by_set.items() if d == dataset for s in subjects) == \
            sorted(study.subjects(dataset))
    test = study.set_of("demo", study.subjects_in("test")[0])
    assert test.subjects == tuple(study.subjects_in("test")) and len(test.subjects) >= 6
    job = SimpleNamespace(degradation="nearest", variant="esrgan")
    inputs = stage.set_input(test)(job)
    outputs = [o.format(degradation="nearest", variant="esrgan") for o in stage.outputs(test)]
    args = _args("super-resolve", stage.options(job, files(**inputs), files(*outputs)))
    assert args["inputs"] == [f"results/degrade/demo/nearest/sub-{s}_T1w.nii.gz" for s in test.subjects]
    assert args["scan.reference"] == [f"results/prepare/demo/sub-{s}/sub-{s}_T1w.nii.gz" for s in test.subjects]
    assert args["output"] == "results/super_resolve/demo/nearest/esrgan"
    assert outputs == [f"{args['output']}/sub-{s}_T1w.nii.gz" for s in test.subjects]
    assert args["method.model"] == "results/train/demo/esrgan/model.safetensors"
