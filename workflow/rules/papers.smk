# papers: every table and figure of the three papers, each a target by path under results/papers/<dataset>/<paper>/
# and a report item with a caption (category = paper).


wildcard_constraints:
    paper=r"threeplayer|disgan",
    table=r"method_comparison|method_comparison_out_of_sample|ablation",


rule papers_method_table:
    input:
        PLAN.papers.table_input,
    output:
        **PLAN.papers.outputs("{paper}", "{table}", "table", "paper_table", report),
    log:
        PLAN.papers.log("{paper}", "{table}"),
    benchmark:
        PLAN.papers.benchmark("{paper}", "{table}")
    conda:
        ENV
    params:
        inputs=PLAN.papers.table_inputs,
        reference=PLAN.papers.table_reference,
        reference_option=PLAN.papers.table_reference_option,
        dataset=PLAN.papers.table_dataset,
        variants=PLAN.papers.table_variants,
        n=PLAN.papers.table_n,
    shell:
        "mrisr papers method-table --inputs {params.inputs:q} {params.reference_option}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule papers_noise_table:
    input:
        PLAN.papers.noise_table_input(),
    output:
        **PLAN.papers.outputs("disgan", "noise", "table", "noise_table", report),
    log:
        PLAN.papers.log("disgan", "noise_table"),
    benchmark:
        PLAN.papers.benchmark("disgan", "noise_table")
    conda:
        ENV
    params:
        inputs=PLAN.papers.noise_table_inputs,
        reference=PLAN.papers.noise_reference(),
        reference_option=PLAN.papers.reference_option(PLAN.papers.noise_reference()),
        variants=PLAN.papers.noise_methods,
        sigmas=PLAN.papers.noise_sigmas,
        n=PLAN.papers.test_n(),
    shell:
        "mrisr papers noise-table --inputs {params.inputs:q} {params.reference_option}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule papers_noise_figure:
    input:
        PLAN.papers.path("disgan", "noise.csv"),
    output:
        **PLAN.papers.outputs("disgan", "noise", "figure", "noise_figure", report),
    log:
        PLAN.papers.log("disgan", "noise_figure"),
    benchmark:
        PLAN.papers.benchmark("disgan", "noise_figure")
    conda:
        ENV
    params:
        variants=PLAN.papers.noise_methods,
        sigmas=PLAN.papers.noise_sigmas,
        n=PLAN.papers.test_n(),
    shell:
        "mrisr papers noise-figure --table {input:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_settings_table:
    input:
        PLAN.papers.field_table_input(),
    output:
        **PLAN.papers.outputs("field", "settings", "table", "settings_table", report),
    log:
        PLAN.papers.log("field", "settings_table"),
    benchmark:
        PLAN.papers.benchmark("field", "settings_table")
    conda:
        ENV
    params:
        inputs=PLAN.papers.field_table_inputs,
        reference=PLAN.study.field["reference"],
        reference_option=PLAN.papers.field_reference_option(),
        published=PLAN.papers.field_published(),
        settings=PLAN.study.field_settings,
        variants=PLAN.study.field["variants"],
        n=PLAN.papers.test_n(),
    shell:
        "mrisr papers settings-table --inputs {params.inputs:q} {params.reference_option}"
        " --published {params.published:q} --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule papers_settings_figure:
    input:
        PLAN.papers.field_path("settings.csv"),
    output:
        **PLAN.papers.outputs("field", "settings", "figure", "settings_figure", report),
    log:
        PLAN.papers.log("field", "settings_figure"),
    benchmark:
        PLAN.papers.benchmark("field", "settings_figure")
    conda:
        ENV
    params:
        settings=PLAN.study.field_settings,
    shell:
        "mrisr papers settings-figure --table {input:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_sr_comparison:
    input:
        unpack(PLAN.papers.sr_figure_input),
    output:
        **PLAN.papers.outputs("{paper}", "sr_comparison", "figure", "sr_comparison", report),
    log:
        PLAN.papers.log("{paper}", "sr_comparison"),
    benchmark:
        PLAN.papers.benchmark("{paper}", "sr_comparison")
    conda:
        ENV
    params:
        inputs=PLAN.papers.sr_panels,
        zoom=config["figures"]["zoom"],
        scale=PLAN.study.scale_text,
        title=PLAN.papers.sr_figure_title,
        subject=PLAN.papers.figure_subject,
    shell:
        "mrisr papers sr-comparison --inputs {params.inputs:q} --mask {input.mask:q} --scale {params.scale:q}"
        " --zoom {params.zoom:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_zoom_profile:
    input:
        unpack(PLAN.papers.sr_figure_input),
    output:
        **PLAN.papers.outputs("{paper}", "zoom_profile", "figure", "zoom_profile", report),
    log:
        PLAN.papers.log("{paper}", "zoom_profile"),
    benchmark:
        PLAN.papers.benchmark("{paper}", "zoom_profile")
    conda:
        ENV
    params:
        inputs=PLAN.papers.sr_panels,
        zoom=config["figures"]["zoom"],
        length=config["figures"]["profile_length"],
        scale=PLAN.study.scale_text,
        title=PLAN.papers.sr_figure_title,
        subject=PLAN.papers.figure_subject,
    shell:
        "mrisr papers zoom-profile --inputs {params.inputs:q} --mask {input.mask:q} --scale {params.scale:q}"
        " --zoom {params.zoom:q} --length {params.length:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_discrepancy:
    input:
        PLAN.papers.discrepancy_input(),
    output:
        **PLAN.papers.outputs("threeplayer", "discrepancy", "figure", "discrepancy", report),
    log:
        PLAN.papers.log("threeplayer", "discrepancy"),
    benchmark:
        PLAN.papers.benchmark("threeplayer", "discrepancy")
    conda:
        ENV
    params:
        inputs=PLAN.papers.discrepancy_inputs,
        variants=PLAN.papers.discrepancy_variants,
    shell:
        "mrisr papers discrepancy --inputs {params.inputs:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_stripes:
    input:
        gt=PLAN.papers.figure_hr("T1w"),
        mask=PLAN.papers.figure_hr("mask"),
        blended=PLAN.papers.figure_sr(PLAN.papers.stripes_variant),
        pasted=PLAN.papers.figure_sr(PLAN.papers.stripes_variant, "sr_pasted"),
    output:
        **PLAN.papers.outputs("disgan", "stripes", "figure", "stripes", report),
    log:
        PLAN.papers.log("disgan", "stripes"),
    benchmark:
        PLAN.papers.benchmark("disgan", "stripes")
    conda:
        ENV
    params:
        period=PLAN.papers.stripes_period(),
        variant=PLAN.papers.stripes_variant,
        title=PLAN.papers.figure_title,
        subject=PLAN.papers.figure_subject,
    shell:
        "mrisr papers stripes --gt {input.gt:q} --blended {input.blended:q} --pasted {input.pasted:q} --mask {input.mask:q}"
        " --period {params.period:q} --label {params.variant:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_segmentation_table:
    input:
        **PLAN.papers.segmentation_scores(),
    output:
        **PLAN.papers.outputs("augment", "segmentation", "table", "segmentation_table", report),
    log:
        PLAN.papers.log("augment", "segmentation_table"),
    benchmark:
        PLAN.papers.benchmark("augment", "segmentation_table")
    conda:
        ENV
    params:
        inputs=PLAN.papers.segmentation_table_inputs,
        n=PLAN.papers.test_n(),
        n_train=len(PLAN.study.subjects_in("train")),
        sr_variant=config["segmentation"]["sr_variant"],
        degradation=PLAN.segment.degradation,
    shell:
        "mrisr papers segmentation-table --inputs {params.inputs:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"


rule papers_segmentation_figure:
    input:
        image=PLAN.papers.figure_hr("T1w"),
        label=PLAN.papers.figure_hr("dseg"),
        mask=PLAN.papers.figure_hr("mask"),
        arms=PLAN.papers.segmentation_figure_arms(),
    output:
        **PLAN.papers.outputs("augment", "segmentation", "figure", "segmentation_figure", report),
    log:
        PLAN.papers.log("augment", "segmentation_figure"),
    benchmark:
        PLAN.papers.benchmark("augment", "segmentation_figure")
    conda:
        ENV
    params:
        inputs=PLAN.papers.segmentation_figure_inputs,
        classes=config["segmentation"]["classes"],
        seed=PLAN.papers.figure_seed(),
        subject=PLAN.papers.figure_subject,
        title=PLAN.papers.segmentation_figure_title(),
    shell:
        "mrisr papers segmentation-figure --image {input.image:q} --label {input.label:q} --mask {input.mask:q}"
        " --inputs {params.inputs:q} --classes {params.classes:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


if PLAN.papers.usage_variant:

    rule papers_before_after:
        """Not a paper's: the README's figure of a trained model applied to a scan it has never seen prepared."""
        input:
            **PLAN.papers.before_after_input(),
        output:
            **PLAN.papers.outputs("usage", "before_after", "figure", "before_after", report),
        log:
            PLAN.papers.log("usage", "before_after"),
        benchmark:
            PLAN.papers.benchmark("usage", "before_after")
        conda:
            ENV
        params:
            title=PLAN.papers.before_after_title(),
            subject=PLAN.papers.figure_subject,
            variant=PLAN.papers.usage_variant,
        shell:
            "mrisr papers before-after --lr {input.lr:q} --sr {input.sr:q} --hr {input.hr:q} --title {params.title:q}"
            " --out {output.png:q} > {log:q} 2>&1"
