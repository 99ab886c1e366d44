# pretrain: one pixel-loss generator per generator architecture and pixel loss, on the training dataset; every GAN
# variant with `start: pretrained` begins from it (ESRGAN, BasicSR's pretrain_network_g). Resumes like train.

from mrisr.pretrain import generator_key

# the pretrained generator's key of a variant: its generator config (schema defaults filled) and pixel loss
variant_generator_key = lambda variant: generator_key(
    config["variants"][variant]["generator"], config["variants"][variant]["losses"]["pixel_loss"]
)
#: key -> (generator config, pixel loss), for every variant of this run that starts from a pretrained generator
PRETRAINED = {
    variant_generator_key(v): (config["variants"][v]["generator"], config["variants"][v]["losses"]["pixel_loss"])
    for v in RUN_VARIANTS
    if config["variants"][v]["kind"] == "gan" and config["variants"][v]["start"] == "pretrained"
}
PRETRAIN_SETTINGS = as_json(
    {
        **config["pretrain"],
        **{k: config["train"][k] for k in ("batch_size", "patch_size", "checkpoint_every", "precision")},
        "degradation": config["degradations"][TRAIN_DEGRADATION],
        "scale": config["scale"],
        "seed": config["seed"],
    }
)
get_pretrain_provenance = lambda wildcards: as_json(
    {
        "variant": f"pretrained-{wildcards.generator}",
        "dataset": wildcards.dataset,
        "subjects": subjects_in("train", wildcards.dataset),
        "preprocessing": {k: config["prepare"][k] for k in ("crop", "margin", "normalise")},
    }
)


rule pretrain:
    input:
        hr=lambda wildcards: [
            path("hr", dataset=wildcards.dataset, subject=s, kind="T1w")
            for s in subjects_in("train", wildcards.dataset)
        ],
    output:
        model=path("pretrained"),
        log=report(
            path("pretrain_log"),
            caption="../report/pretrain_log.rst",
            category="Training",
            subcategory="pretrained generators",
        ),
    log:
        "results/logs/pretrain/{dataset}/{generator}.log",
    benchmark:
        "results/benchmarks/pretrain/{dataset}/{generator}.tsv"
    priority: 3  # the longest jobs first: the whole train stage waits for these
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_resources(config["train"]["gpus"]),
    params:
        generator=lambda wildcards: as_json(PRETRAINED[wildcards.generator][0]),
        pixel_loss=lambda wildcards: PRETRAINED[wildcards.generator][1],
        settings=PRETRAIN_SETTINGS,
        provenance=get_pretrain_provenance,
        processes=config["train"]["gpus"],
    shell:
        "mrisr pretrain --hr {input.hr:q} --generator {params.generator:q} --pixel-loss {params.pixel_loss:q}"
        " --settings {params.settings:q} --provenance {params.provenance:q}"
        ' --out-dir "$(dirname {output.model:q})" --threads {threads} --processes {params.processes} > {log:q} 2>&1'
