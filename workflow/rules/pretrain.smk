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
        options=PLAN.pretrain.options,
    shell:
        "mrisr pretrain {params.options} --threads {threads} > {log:q} 2>&1"
