{#-
    The `replace_scope` incremental strategy.

    An incremental batch is the complete, current content of a set of *scopes* (values of
    the model's `scope_key` config): every row the scope must hold after the run. Each
    scope the batch touches is announced by a marker row (`_scope_only = true`, or a null
    `scope_marker_column` in a model whose enforced contract admits no extra column), which is
    how a scope that must become empty (all its rows were invalidated by a late load) is
    still replaced. The strategy deletes every target row of the announced scopes and
    inserts the batch's real rows, so an incremental run converges to exactly what a full
    refresh would build.

    PostgreSQL: delete + insert in the run's transaction.
    Spark (parquet cannot delete rows): the kept rows and the batch are written to a staging
    table, which then overwrites the target; the transformation work is still incremental.
-#}

{% macro get_incremental_replace_scope_sql(arg_dict) %}
    {{ return(adapter.dispatch('get_incremental_replace_scope_sql', 'condomanage')(arg_dict)) }}
{% endmacro %}

{% macro default__get_incremental_replace_scope_sql(arg_dict) %}
    {%- set target_relation = arg_dict['target_relation'] -%}
    {%- set batch_relation = arg_dict['temp_relation'] -%}
    {%- set scope_key = config.require('scope_key') -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    {%- set scopes_to_delete = replaced_scope_keys(batch_relation, target_relation, scope_key) -%}
    {%- if config.get('track_changes', false) -%}
    {%- set changes = change_table(target_relation) -%}
    {%- set stamp = run_started_literal() -%}
    drop table if exists {{ changes }};

    -- Unlogged: no WAL for a table that only lives until the consumers' build. A crash
    -- empties it, header included, and its consumers then recompute (change_set_state).
    create unlogged table {{ changes }} as
    select {{ columns }}, cast(0 as smallint) as _sinal, {{ stamp }} as _alterado_em
    from {{ target_relation }}
    where false;

    insert into {{ changes }} (_sinal, _alterado_em) values (0, {{ stamp }});

    with removed as (
        delete from {{ target_relation }}
        where {{ scope_key }} in ({{ scopes_to_delete }})
        returning {{ columns }}
    )

    insert into {{ changes }} ({{ columns }}, _sinal, _alterado_em)
    select {{ columns }}, -1, {{ stamp }} from removed;

    insert into {{ changes }} ({{ columns }}, _sinal, _alterado_em)
    select {{ columns }}, 1, {{ stamp }} from {{ batch_relation }} where {{ scope_real_rows() }};

    -- Its consumers join it in the same dbt run: give the planner real statistics.
    analyze {{ changes }};
    {%- do adapter.cache_added(changes) %}
    {%- else %}
    delete from {{ target_relation }}
    where {{ scope_key }} in ({{ scopes_to_delete }});
    {%- endif %}

    insert into {{ target_relation }} ({{ columns }})
    select {{ columns }} from {{ batch_relation }} where {{ scope_real_rows() }};
{% endmacro %}

{#-
    The batch's scope keys whose old rows the delete must look for. When an index of the
    model leads with the scope key, keys above the target's largest one cannot have rows
    there: they are left out, so appended entities (new, higher ids: the usual incremental
    run) cost no index probe each (0.27 s for 100k new transactions at 10M rows). The
    largest key is one step down that index.
-#}
{% macro replaced_scope_keys(batch_relation, target_relation, scope_key) -%}
    {%- set leading = [] -%}
    {%- for index in config.get('indexes') or [] -%}
        {%- do leading.append(index['columns'][0] | lower) -%}
    {%- endfor -%}
    select batch.{{ scope_key }} from {{ batch_relation }} as batch
    {%- if scope_key | lower in leading %}
    where batch.{{ scope_key }} <= (
        select max(existing.{{ scope_key }}) from {{ target_relation }} as existing
    )
    {%- endif %}
{%- endmacro %}

{% macro spark_replace_scope_sql(batch_relation, target_relation) %}
    {%- set scope_key = config.require('scope_key') -%}
    {%- set columns = adapter.get_columns_in_relation(target_relation)
        | map(attribute='quoted') | join(', ') -%}
    {%- set staging = target_relation.incorporate(
        path={'identifier': target_relation.identifier ~ '__dbt_replace'}) -%}
    {% call statement('replace_scope_drop_stale') -%}
        drop table if exists {{ staging }}
    {%- endcall %}
    {%- set batch = batch_relation.identifier ~ '_cached' -%}
    {#- Evaluate the batch once: it is read twice below. -#}
    {% call statement('replace_scope_cache_batch') -%}
        cache table {{ batch }} as select * from {{ batch_relation }}
    {%- endcall %}
    {%- if config.get('track_changes', false) %}
    {%- set changes = change_table(target_relation) -%}
    {%- set stamp = run_started_literal() -%}
    {%- set column_count = columns.split(', ') | length -%}
    {% call statement('replace_scope_drop_changes') -%}
        drop table if exists {{ changes }}
    {%- endcall %}
    {% call statement('replace_scope_changes') -%}
        create table {{ changes }} using parquet as
        select {{ columns }}, cast(-1 as smallint) as _sinal, {{ stamp }} as _alterado_em
        from {{ target_relation }} as kept
        where exists (
            select 1 from {{ batch }} as batch
            where batch.{{ scope_key }} = kept.{{ scope_key }}
        )
        union all
        select {{ columns }}, cast(1 as smallint), {{ stamp }} from {{ batch }} where {{ scope_real_rows() }}
        union all
        select {% for _ in range(column_count) %}null, {% endfor %}cast(0 as smallint), {{ stamp }}
    {%- endcall %}
    {%- do adapter.cache_added(changes) %}
    {%- endif %}
    {% call statement('replace_scope_stage') -%}
        create table {{ staging }} using parquet as
        select {{ columns }} from {{ target_relation }} as kept
        where not exists (
            select 1 from {{ batch }} as batch
            where batch.{{ scope_key }} = kept.{{ scope_key }}
        )
        union all
        select {{ columns }} from {{ batch }} where {{ scope_real_rows() }}
    {%- endcall %}
    {% call statement('replace_scope_uncache_batch') -%}
        drop view if exists {{ batch }}
    {%- endcall %}
    {% call statement('replace_scope_overwrite') -%}
        insert overwrite table {{ target_relation }} select {{ columns }} from {{ staging }}
    {%- endcall %}
    drop table if exists {{ staging }}
{% endmacro %}

{#-
    dbt-spark knows only its built-in strategies; these two overrides add `replace_scope`
    and hand every other strategy back to dbt-spark unchanged.
-#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- if raw_strategy == 'replace_scope' -%}
        {{ return(raw_strategy) }}
    {%- endif -%}
    {{ return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
{% endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- if strategy == 'replace_scope' -%}
        {{ spark_replace_scope_sql(source, target) }}
    {%- else -%}
        {{ dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) }}
    {%- endif -%}
{% endmacro %}

{#-
    Post-hook (outside the model's transaction) of the silver tables that the incremental
    transaction batch joins by index: VACUUM sets their visibility map, so those joins are
    index-only (no heap visit per probe), and ANALYZE gives the planner the new row counts
    right away rather than whenever autovacuum gets to it. Skipped when this build was
    incremental and its change set (track_changes) shows it changed no row. Nothing on Spark.
-#}
{% macro vacuum_analyze() -%}
    {{ return(adapter.dispatch('vacuum_analyze', 'condomanage')()) }}
{%- endmacro %}

{% macro default__vacuum_analyze() -%}
    {%- if not built_without_changes() -%}
    vacuum (analyze) {{ this }}
    {%- endif -%}
{%- endmacro %}

{#-
    Whether the build that just ended was incremental and changed no row: the model tracks
    its changes and its change table holds this run's header and no signed row. False
    whenever that cannot be told (full refresh, first build, no change table). Runs its query
    outside any transaction (auto_begin=False): it is rendered by a post-hook that runs
    after the model's commit, before a VACUUM.
-#}
{% macro built_without_changes() -%}
    {%- if not execute or not is_incremental() or not config.get('track_changes', false) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set changes = adapter.get_relation(
        database=this.database, schema=this.schema,
        identifier=this.identifier ~ '__alteracoes') -%}
    {%- if changes is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- call statement('built_without_changes', fetch_result=True, auto_begin=False) -%}
        select
            count(case when _sinal = 0 and _alterado_em = {{ run_started_literal() }} then 1 end)
                as headers,
            count(case when _sinal <> 0 then 1 end) as changed_rows
        from {{ changes }}
    {%- endcall -%}
    {%- set counts = load_result('built_without_changes').table.rows[0] -%}
    {{ return(counts[0] | int == 1 and counts[1] | int == 0) }}
{%- endmacro %}

{% macro spark__vacuum_analyze() -%}
{%- endmacro %}

{#-
    Which rows of a batch are real rows rather than scope markers: `not _scope_only`, or,
    for a model with `scope_marker_column` set (gold, whose enforced contract admits no
    extra column), the rows where that never-null column is not null.
-#}
{% macro scope_real_rows() -%}
    {%- set marker_column = config.get('scope_marker_column') -%}
    {%- if marker_column -%}
        {{ marker_column }} is not null
    {%- else -%}
        not _scope_only
    {%- endif -%}
{%- endmacro %}
