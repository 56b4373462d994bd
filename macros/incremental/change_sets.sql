{#-
    Change sets: how the gold reports follow silver without re-reading it.

    An incremental model configured with `track_changes=true` leaves, after each incremental
    build, the rows that build changed in a companion table `<its relation>__alteracoes`:
    every row it removed (`_sinal` -1), every row it inserted (`_sinal` +1), and one header
    row (`_sinal` 0, other columns null) stamped, like every row, with the build's
    `run_started_at` in `_alterado_em`. A consumer adds the signed rows to what it built last
    time, which costs the size of the change, not the size of silver.

    That is only right when the consumer's last build saw exactly the producer's state
    before that change. The watermark table (one row per build of every incremental model)
    tells, so a consumer asks `change_set_state(producer)` before it reads the change set:

    * 'apply': the change set is the producer's latest build, which was incremental, and
      the consumer was last built between the producer's previous build and that one;
    * 'none': the consumer was built after the producer's latest build: nothing to add;
    * 'rebuild': anything else (the producer was rebuilt by --full-refresh, built twice
      without the consumer, or the consumer is new): recompute from silver, as a full
      refresh would.
-#}

{#- Added to dbt's relation cache when written, so consumers in the same run find it. -#}
{% macro change_table(relation) -%}
    {{ return(relation.incorporate(
        path={'identifier': relation.identifier ~ '__alteracoes'}, type='table')) }}
{%- endmacro %}

{% macro change_set_state(producer) -%}
    {%- if not execute or var('sqlfluff_lint', false) or not is_incremental() -%}
        {{ return('rebuild') }}
    {%- endif -%}
    {%- set changes = adapter.get_relation(
        database=producer.database, schema=producer.schema,
        identifier=producer.identifier ~ '__alteracoes') -%}
    {%- set marks = adapter.get_relation(
        database=(none if target.type == 'spark' else target.database),
        schema=target.schema,
        identifier='incremental_watermarks') -%}
    {%- if changes is none or marks is none -%}
        {{ return('rebuild') }}
    {%- endif -%}
    {%- set query -%}
        with

        builds as (
            select
                model,
                run_started_at
            from {{ watermark_table() }}
        ),

        producer_last as (
            select max(run_started_at) as built_at
            from builds
            where model = '{{ producer.identifier }}'
        ),

        producer_previous as (
            select max(builds.run_started_at) as built_at
            from builds
            cross join producer_last
            where
                builds.model = '{{ producer.identifier }}'
                and builds.run_started_at < producer_last.built_at
        ),

        consumer_last as (
            select max(run_started_at) as built_at
            from builds
            where model = '{{ this.identifier }}'
        ),

        change_header as (
            select max(_alterado_em) as built_at
            from {{ changes }}
            where _sinal = 0
        )

        select
            case
                when consumer_last.built_at >= producer_last.built_at then 'none'
                when
                    change_header.built_at = producer_last.built_at
                    and consumer_last.built_at >= producer_previous.built_at
                    then 'apply'
                else 'rebuild'
            end as state
        from producer_last
        cross join producer_previous
        cross join consumer_last
        cross join change_header
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}

{#-
    The signed rows of `producer`'s change set when `state` is 'apply'; no rows when it is
    'none'. `columns` are the producer columns to read, besides `_sinal`.
-#}
{% macro change_set_rows(producer, state, columns) -%}
    select
        {%- for column in columns %}
        changes.{{ column }},
        {%- endfor %}
        changes._sinal
    from {{ change_table(producer) }} as changes
    where
        changes._sinal <> 0
        {%- if state != 'apply' %}
        and 1 = 0
        {%- endif %}
{%- endmacro %}

{#-
    Whether the latest change sets of two producers come from the same dbt invocation (both
    headers carry the same `run_started_at`).
-#}
{% macro change_sets_aligned(producer, other) -%}
    {%- if not execute or var('sqlfluff_lint', false) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select count(distinct _alterado_em) as stamps
        from (
            select first_set._alterado_em
            from {{ change_table(producer) }} as first_set
            where first_set._sinal = 0
            union all
            select second_set._alterado_em
            from {{ change_table(other) }} as second_set
            where second_set._sinal = 0
        ) as headers
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] | int == 1) }}
{%- endmacro %}
