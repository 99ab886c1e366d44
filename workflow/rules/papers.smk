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
        options=PLAN.papers.table_options,
        dataset=PLAN.papers.table_dataset,
        n=PLAN.papers.table_n,
    shell:
        "mrisr papers method-table {params.options} > {log:q} 2>&1"


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
        options=PLAN.papers.noise_table_options,
        n=PLAN.papers.test_n(),
    shell:
        "mrisr papers noise-table {params.options} > {log:q} 2>&1"


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
        options=PLAN.papers.noise_figure_options,
        variants=PLAN.papers.noise_methods,
        sigmas=PLAN.papers.noise_sigmas,
        n=PLAN.papers.test_n(),
    shell:
        "mrisr papers noise-figure {params.options} > {log:q} 2>&1"


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
        options=PLAN.papers.field_table_options,
        n=PLAN.papers.test_n(),
    shell:
        "mrisr papers settings-table {params.options} > {log:q} 2>&1"


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
        options=PLAN.papers.field_figure_options,
        settings=PLAN.study.field_settings,
    shell:
        "mrisr papers settings-figure {params.options} > {log:q} 2>&1"


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
        figure="sr-comparison",
        options=PLAN.papers.sr_comparison_options,
        subject=PLAN.papers.figure_subject,
    shell:
        "mrisr papers {params.figure} {params.options} > {log:q} 2>&1"


use rule papers_sr_comparison as papers_zoom_profile with:
    output:
        **PLAN.papers.outputs("{paper}", "zoom_profile", "figure", "zoom_profile", report),
    log:
        PLAN.papers.log("{paper}", "zoom_profile"),
    benchmark:
        PLAN.papers.benchmark("{paper}", "zoom_profile")
    params:
        figure="zoom-profile",
        options=PLAN.papers.zoom_profile_options,
        subject=PLAN.papers.figure_subject,


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
        options=PLAN.papers.discrepancy_options,
    shell:
        "mrisr papers discrepancy {params.options} > {log:q} 2>&1"


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
        options=PLAN.papers.stripes_options,
    shell:
        "mrisr papers stripes {params.options} > {log:q} 2>&1"


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
        options=PLAN.papers.segmentation_table_options,
        n=PLAN.papers.test_n(),
        n_train=len(PLAN.study.subjects_in("train")),
        sr_variant=config["segmentation"]["sr_variant"],
        degradation=PLAN.segment.degradation,
    shell:
        "mrisr papers segmentation-table {params.options} > {log:q} 2>&1"


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
        options=PLAN.papers.segmentation_figure_options,
    shell:
        "mrisr papers segmentation-figure {params.options} > {log:q} 2>&1"


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
            options=PLAN.papers.before_after_options,
        shell:
            "mrisr papers before-after {params.options} > {log:q} 2>&1"
