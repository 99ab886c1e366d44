# train: one job per GAN variant; resumes from checkpoint.pt (kept outside the outputs) after a stop.


localrules:
    download,


rule download:
    wildcard_constraints:
        name=r"[^/]+",
    output:
        "results/downloads/{name}",
    params:
        url=lambda wc: config["downloads"][wc.name]["url"],
        sha256=lambda wc: config["downloads"][wc.name]["sha256"],
        size=lambda wc: f"--size {config['downloads'][wc.name]['size']}" if config["downloads"][wc.name]["size"] else "",
    benchmark:
        "results/benchmarks/download/{name}.tsv"
    log:
        "results/logs/download/{name}.log",
    conda:
        ENV
    shell:
        "mrisr download --url {params.url:q} --sha256 {params.sha256} {params.size} --out {output}"
        " > {log} 2>&1"


rule train:
    input:
        unpack(train_inputs),
    output:
        model="results/models/{dataset}/{variant}/model.pt",
        log=report(
            "results/models/{dataset}/{variant}/train_log.csv",
            caption="../report/train_log.rst",
            category="Training",
            subcategory="{variant}",
        ),
    params:
        variant=lambda wc: as_json(variant_for_training(wc.variant)),
        settings=train_settings,
        launch=(
            f"torchrun --standalone --nproc_per_node {config['train']['gpus']} -m mrisr"
            if config["train"]["gpus"] > 1
            else "mrisr"
        ),
    threads: config["threads"]
    resources:
        gpu=config["train"]["gpus"],
    benchmark:
        "results/benchmarks/train/{dataset}/{variant}.tsv",
    log:
        "results/logs/train/{dataset}/{variant}.log",
    conda:
        ENV
    shell:
        "{params.launch} train --hr {input.hr} --variant {params.variant:q} --settings {params.settings:q}"
        " --out-dir $(dirname {output.model}) --threads {threads} > {log} 2>&1"
