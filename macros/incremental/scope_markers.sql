{#-
    The batch of a `replace_scope` model (see strategy.sql): on an incremental run, the
    model's rows plus one marker row per affected scope; on a full build, the rows alone.

    `rows` is the CTE holding the model's rows, `scopes` a CTE or relation holding one row
    per affected value of the model's `scope_key`. Each such model ends with

        final as (
            {{ replace_scope_batch('rows_cte', 'scopes_cte') }}
        )

        select * from final
-#}
{% macro replace_scope_batch(rows, scopes) -%}
    {%- if is_incremental() %}
    select
        {{ rows }}.*{% if not config.get('scope_marker_column') %},
        false as _scope_only{% endif %}
    from {{ rows }}

    union all

    -- One marker per affected scope: its old rows go even when it has no new row.
    {{ scope_markers(scopes) | indent(4) }}
    {%- else %}
    select * from {{ rows }}
    {%- endif %}
{%- endmacro %}

{#-
    One marker row per scope value in `scopes` (a CTE whose one column is the scope key):
    the key in the key's column, a null in every other column of the model, `_scope_only`
    true (no `_scope_only` in a model with `scope_marker_column`). Column names, order and types come from `scope_marker_columns()`.
-#}
{% macro scope_markers(scopes) -%}
    {%- set columns = scope_marker_columns() -%}
    {%- set untyped = columns | rejectattr('key') | rejectattr('type') | list -%}
    {%- set items = [] -%}
    {%- for column in columns -%}
        {%- if column.key -%}
            {%- do items.append(scopes ~ '.*') -%}
        {%- elif column.type -%}
            {%- do items.append('cast(null as ' ~ column.type ~ ') as ' ~ column.name) -%}
        {%- else -%}
            {%- do items.append('typed_as.' ~ column.name) -%}
        {%- endif -%}
    {%- else -%}
        {%- do items.append(scopes ~ '.*') -%}
    {%- endfor -%}
    {#- A model with `scope_marker_column` (enforced contract) has no flag column: its
        markers are the rows whose marker column is null. -#}
    {%- if not config.get('scope_marker_column') -%}
        {%- do items.append('true as _scope_only') -%}
    {%- endif %}
    select
        {%- for item in items %}
        {{ item }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ scopes }}
    {%- if untyped %}
    left join {{ this }} as typed_as
        on 1 = 0
    {%- endif %}
{%- endmacro %}

{#-
    The model's columns, in order, as `{name, type, key}`, read from the existing relation
    (`adapter.get_columns_in_relation(this)`): typed nulls, because PostgreSQL would
    otherwise type a union's varchar(n) column as plain varchar, and dbt would then widen the
    target column. `key` marks the model's `scope_key`. Empty while linting (no database:
    the markers render the key alone). A unit test has no relation (`this` is its fixture),
    so it overrides this macro with the column names, the key flagged and no types: those
    nulls then come from a join to `this` that matches no row, and take its types.
-#}
{% macro scope_marker_columns() -%}
    {%- set columns = [] -%}
    {%- if execute and not var('sqlfluff_lint', false) -%}
        {%- set key = config.require('scope_key') | lower -%}
        {%- for column in adapter.get_columns_in_relation(this) -%}
            {%- do columns.append({
                'name': column.name, 'type': column.data_type, 'key': column.name | lower == key,
            }) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}
