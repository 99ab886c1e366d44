# train: one job per GAN variant; resumes from checkpoint.pt (kept outside the outputs) after a stop.


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
    benchmark:
        "results/benchmarks/train/{dataset}/{variant}.tsv",
    log:
        "results/logs/train/{dataset}/{variant}.log",
    conda:
        ENV
    shell:
        "mrisr train --hr {input.hr} --variant {params.variant:q} --settings {params.settings:q}"
        " --out-dir $(dirname {output.model}) --threads {threads} > {log} 2>&1"
