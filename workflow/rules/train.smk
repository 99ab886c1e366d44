# train: one job per GAN variant; resumes from checkpoint.pt (kept outside the outputs) after a stop.


def train_settings(wildcards):
    train = config["train"]
    return as_json(
        {
            "steps": train["steps"],
            "batch_size": train["batch_size"],
            "patch_size": train["patch_size"],
            "checkpoint_every": train["checkpoint_every"],
            "degradation": config["degradations"][train["degradation"]],
            "scale": config["scale"],
            "seed": config["seed"],
        }
    )


rule train:
    input:
        hr=lambda wc: [hr_path(wc.dataset, s) for s in subjects_in("train", wc.dataset)],
    output:
        model="results/models/{dataset}/{variant}/model.pt",
        log=report(
            "results/models/{dataset}/{variant}/train_log.csv",
            caption="../report/train_log.rst",
            category="Training",
            subcategory="{variant}",
        ),
    params:
        variant=lambda wc: as_json(config["variants"][wc.variant]),
        settings=train_settings,
    threads: config["threads"]
    log:
        "results/logs/train/{dataset}/{variant}.log",
    conda:
        ENV
    shell:
        "mrisr train --hr {input.hr} --variant {params.variant:q} --settings {params.settings:q}"
        " --out-dir $(dirname {output.model}) --threads {threads} > {log} 2>&1"
