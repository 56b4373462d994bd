{#-
    High-water marks of the incremental models. After each build of an incremental model,
    a post-hook records when that dbt run started (`run_started_at`) in
    `<target schema>.incremental_watermarks`. The next run reconsiders every bronze row
    loaded after that moment minus `incremental_lookback_minutes`: a load that committed
    while the previous run was reading is re-read, never skipped, as long as loads stamp
    `_loaded_at` less than the lookback before they commit (the loaders stamp it in their
    short final transaction).
-#}
{% macro watermark_table() -%}
    {{ target.schema }}.incremental_watermarks
{%- endmacro %}

{% macro create_watermark_table() -%}
    {#- Only when missing: a least-privilege transformer may not create schemas. -#}
    {% if execute and not adapter.check_schema_exists(target.database, target.schema) %}
        {% call statement('create_state_schema') -%}
            create schema if not exists {{ target.schema }}
        {%- endcall %}
    {% endif %}
    create table if not exists {{ watermark_table() }} (
        model {{ 'string' if target.type == 'spark' else 'text' }},
        run_started_at {{ 'timestamp' if target.type == 'spark' else 'timestamptz' }}
    ){{ ' using parquet' if target.type == 'spark' else '' }}
{%- endmacro %}

{% macro record_watermark() -%}
    insert into {{ watermark_table() }} (model, run_started_at)
    values ('{{ this.identifier }}', {{ run_started_literal() }})
{%- endmacro %}

{#- When this dbt invocation started, as a timestamp literal: the version stamp of its builds. -#}
{% macro run_started_literal() -%}
    {{ as_load_timestamp("'" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f')
        ~ ('' if target.type == 'spark' else '+00') ~ "'") }}
{%- endmacro %}

{#-
    The load-time cutoff of an incremental run, as a timestamp literal read once per run
    (so the engines do not re-evaluate it inside every subquery): the start of the previous
    run that built the model, minus the lookback; the epoch when none is recorded.
-#}
{% macro incremental_cutoff() -%}
    {%- if not execute or var('sqlfluff_lint', false) -%}
        {{ return(epoch_timestamp()) }}
    {%- endif -%}
    {%- set state = adapter.get_relation(
        database=(none if target.type == 'spark' else target.database),
        schema=target.schema,
        identifier='incremental_watermarks') -%}
    {%- if state is none -%}
        {{ return(epoch_timestamp()) }}
    {%- endif -%}
    {%- set query -%}
        select {{ as_text(minutes_before(
            'coalesce(max(run_started_at), ' ~ epoch_timestamp() ~ ')',
            var('incremental_lookback_minutes'))) }} as cutoff
        from {{ watermark_table() }}
        where model = '{{ this.identifier }}'
    {%- endset -%}
    {%- set cutoff = as_load_timestamp("'" ~ run_query(query).columns[0].values()[0] ~ "'") -%}
    {%- if bronze_rows_removed_since(cutoff) -%}
        {{ log(this.identifier ~ ': a forced reload removed bronze rows since the last build;'
            ~ ' reprocessing every id', info=True) }}
        {{ return(epoch_timestamp()) }}
    {%- endif -%}
    {{ return(cutoff) }}
{%- endmacro %}
