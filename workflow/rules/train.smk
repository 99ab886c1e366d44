# train: one job per GAN variant, from scratch or from its pretrained generator (pretrain.smk); resumes from
# checkpoint.pt (kept outside the outputs) after a stop.


rule train:
    input:
        unpack(PLAN.train.input),
    output:
        model=path("model"),
        log=report(
            path("train_log"),
            caption="../report/train_log.rst",
            category="Training",
            subcategory="{variant}",
        ),
    log:
        "results/logs/train/{dataset}/{variant}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{variant}.tsv"
    priority: 2  # long jobs first, so that short ones fill the other cores at the end
    conda:
        ENV
    threads: config["threads"]
    resources:
        **PLAN.train.resources(),
    params:
        options=PLAN.train.options,
    shell:
        "mrisr train {params.options} --threads {threads} > {log:q} 2>&1"
