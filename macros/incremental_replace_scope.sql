{#-
    The `replace_scope` incremental strategy.

    An incremental batch is the complete, current content of a set of *scopes* (values of
    the model's `scope_key` config): every row the scope must hold after the run. Each
    scope the batch touches is announced by a marker row (`_scope_only = true`), which is
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
        where {{ scope_key }} in (select batch.{{ scope_key }} from {{ batch_relation }} as batch)
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
    where {{ scope_key }} in (select batch.{{ scope_key }} from {{ batch_relation }} as batch);
    {%- endif %}

    insert into {{ target_relation }} ({{ columns }})
    select {{ columns }} from {{ batch_relation }} where {{ scope_real_rows() }};
{% endmacro %}

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

{#-
    Whether a forced reload (`condo load --force`) replaced a load after `cutoff`. Bronze is
    otherwise append-only, and the incremental models only look for rows added since their
    last build; a replaced load's rows are gone, so the models then reprocess every id,
    which gives what a full refresh gives. Reads the loaders' ledger `ops.loads` when there
    is one (on both targets); bronze written by other tools has none, and then only appends
    are supported (docs/dbt.md).
-#}
{% macro bronze_rows_removed_since(cutoff) -%}
    {%- set ledger = adapter.get_relation(
        database=(none if target.type == 'spark' else target.database),
        schema='ops',
        identifier='loads') -%}
    {%- if ledger is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select count(*) as replaced_loads
        from {{ ledger }} as replaced
        inner join {{ ledger }} as replacing
            on replaced.replaced_by = replacing.load_id
        where
            replaced.status = 'replaced'
            and replacing.finished_at > {{ cutoff }}
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] | int > 0) }}
{%- endmacro %}

{#-
    Ids of `relation` (a bronze source) whose rows were loaded after `cutoff`, plus, when
    `parent` is given, the ids whose rows (any version) reference a `parent_key` value that
    was loaded after `cutoff` (a late condominium makes its properties valid). The loaders
    keep a BRIN index on `_loaded_at`, so on PostgreSQL this reads only the new loads.
-#}
{% macro ids_loaded_since(
    relation, id_column, cutoff, parent=none, parent_key=none, include_current=true
) -%}
    select changed.{{ id_column }}
    from {{ relation }} as changed
    where changed._loaded_at > {{ cutoff }}
    {%- if parent is not none %}
    union
    select referencing.{{ id_column }}
    from {{ relation }} as referencing
    where referencing.{{ parent_key }} in (
        select parents.{{ parent_key }}
        from {{ parent }} as parents
        where parents._loaded_at > {{ cutoff }}
    )
    {%- endif %}
    {%- if include_current %}
    {{- current_ids_when_reprocessing(id_column, cutoff) }}
    {%- endif %}
{%- endmacro %}

{#-
    When an incremental run reprocesses everything (the cutoff is the epoch, e.g. after a
    forced reload removed bronze rows), the ids already in the model are candidates too:
    an id whose bronze rows are all gone must leave the model, and only a candidate's old
    row is replaced.
-#}
{% macro current_ids_when_reprocessing(id_column, cutoff) -%}
    {%- if cutoff | trim == epoch_timestamp() | trim %}
    union
    select current_rows.{{ id_column }}
    from {{ this }} as current_rows
    {%- endif %}
{%- endmacro %}

{#-
    Ids of the transactions whose silver row may differ from the previous run: their own
    bronze rows were (re)loaded after the cutoff, or their property or resident (any version
    of them) was, or a condominium those reference was. Deliberately a superset: a candidate
    that did not change is rebuilt to the same row. Finding transactions by property or
    resident means reading all of bronze transactions, so that part is left out of the SQL
    when no property, resident or condominium was loaded after the cutoff (the usual case of
    an append of new transactions).
-#}
{% macro changed_transaction_ids(cutoff) -%}
    select distinct tx.transacao_id
    from {{ source('bronze', 'transacoes') }} as tx
    where tx._loaded_at > {{ cutoff }}
    {%- if references_loaded_since(cutoff) %}
    union
    select tx.transacao_id
    from {{ source('bronze', 'transacoes') }} as tx
    where
        tx.imovel_id in (
            {{ ids_loaded_since(source('bronze', 'imoveis'), 'imovel_id', cutoff,
                parent=source('bronze', 'condominios'), parent_key='condominio_id',
                include_current=false) | indent(12) }}
        )
        or tx.morador_id in (
            {{ ids_loaded_since(source('bronze', 'moradores'), 'morador_id', cutoff,
                parent=source('bronze', 'condominios'), parent_key='condominio_id',
                include_current=false) | indent(12) }}
        )
    {%- endif %}
    {{- current_ids_when_reprocessing('transacao_id', cutoff) }}
{%- endmacro %}

{#-
    Whether any property, resident or condominium was loaded after `cutoff`: one cheap query
    at compile time (true when not executing, so the SQL shown by `dbt compile` without a
    database is the complete one).
-#}
{% macro references_loaded_since(cutoff) -%}
    {%- if not execute or var('sqlfluff_lint', false) -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set query -%}
        select count(*) as changed from (
            select 1 as one from {{ source('bronze', 'imoveis') }} where _loaded_at > {{ cutoff }}
            union all
            select 1 as one from {{ source('bronze', 'moradores') }} where _loaded_at > {{ cutoff }}
            union all
            select 1 as one
            from {{ source('bronze', 'condominios') }}
            where _loaded_at > {{ cutoff }}
        ) as loaded
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] | int > 0) }}
{%- endmacro %}

{#-
    The marker rows of an incremental batch: one per scope value in `from_relation`, the
    key first, then a typed null for each of the model's other columns (`column_types`, in
    order; `lineage` appends the five lineage columns), flagged `_scope_only`. The nulls are
    typed because PostgreSQL would otherwise type a union's varchar(n) column as plain
    varchar, and dbt would then widen the target column.
-#}
{% macro scope_markers(key_column, from_relation, column_types, lineage=false, flag=true) -%}
    {%- set types = column_types
        + (['text', 'bigint', 'bigint', 'load_timestamp', 'boolean'] if lineage else []) -%}
    select
        {{ from_relation }}.{{ key_column }}
        {%- for column_type in types %},
        {{ typed_null(column_type) }}
        {%- endfor %}
        {%- if flag %},
        true as _scope_only
        {%- endif %}
    from {{ from_relation }}
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

{#- A null of a column type named the PostgreSQL way, cast as each engine spells it. -#}
{% macro typed_null(column_type) -%}
    {%- if column_type.startswith('varchar(') -%}
        {{ as_varchar('null', column_type[8:-1] | int) }}
    {%- elif column_type == 'text' -%}
        {{ as_text('null') }}
    {%- elif column_type == 'load_timestamp' -%}
        {{ as_load_timestamp('null') }}
    {%- else -%}
        cast(null as {{ column_type }})
    {%- endif -%}
{%- endmacro %}

{#-
    Post-hook (outside the model's transaction) of the silver tables that the incremental
    transaction batch joins by index: VACUUM sets their visibility map, so those joins are
    index-only (no heap visit per probe), and ANALYZE gives the planner the new row counts
    right away rather than whenever autovacuum gets to it. Nothing on Spark.
-#}
{% macro vacuum_analyze() -%}
    {{ return(adapter.dispatch('vacuum_analyze', 'condomanage')()) }}
{%- endmacro %}

{% macro default__vacuum_analyze() -%}
    vacuum (analyze) {{ this }}
{%- endmacro %}

{% macro spark__vacuum_analyze() -%}
{%- endmacro %}
