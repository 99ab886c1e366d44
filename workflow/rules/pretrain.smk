# pretrain: one pixel-loss generator per generator architecture and pixel loss, on the training dataset; every GAN
# variant with `start: pretrained` begins from it (ESRGAN, BasicSR's pretrain_network_g). Resumes like train.


rule pretrain:
    input:
        hr=PLAN.pretrain.training_volumes,
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
        **PLAN.study.gpu_resources(config["train"]["gpus"]),
    params:
        generator=PLAN.pretrain.generator,
        pixel_loss=PLAN.pretrain.pixel_loss,
        settings=PLAN.pretrain.settings,
        provenance=PLAN.pretrain.provenance,
        processes=config["train"]["gpus"],
    shell:
        "mrisr pretrain --hr {input.hr:q} --generator {params.generator:q} --pixel-loss {params.pixel_loss:q}"
        " --settings {params.settings:q} --provenance {params.provenance:q}"
        ' --out-dir "$(dirname {output.model:q})" --threads {threads} --processes {params.processes} > {log:q} 2>&1'
