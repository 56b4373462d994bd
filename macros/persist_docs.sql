{#-
    PostgreSQL's `persist_docs`: write only the table and column comments that differ from
    the ones the relation already has.

    dbt's default issues COMMENT for the table and every documented column on every build.
    COMMENT takes a SHARE UPDATE EXCLUSIVE lock on the table, the lock autovacuum holds: on
    an incremental build of a table autovacuum is working on (a large silver table after a
    full refresh, say), COMMENT waits until the deadlock check cancels the autovacuum, one
    `deadlock_timeout` (1 s by default) on the critical path of the run, and the vacuum is
    lost. The comments rarely change between incremental builds, so one catalog read (no
    lock) replaces those statements; a new relation, whose comments are all missing, gets
    every one of them, as with dbt's default. Spark keeps dbt-spark's own macro.
-#}
{% macro postgres__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- set write_relation = for_relation and config.persist_relation_docs() and model.description -%}
    {%- set write_columns = for_columns and config.persist_column_docs() and model.columns -%}
    {%- if not (write_relation or write_columns) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set stored = stored_comments(relation) -%}
    {%- if write_relation and (stored.relation or '') != model.description -%}
        {%- do run_query(alter_relation_comment(relation, model.description)) -%}
    {%- endif -%}
    {%- if write_columns -%}
        {%- set documented = validate_doc_columns(relation, model.columns, stored.columns.keys() | list) -%}
        {%- set statements = [] -%}
        {%- for name, column in documented.items() -%}
            {%- set stored_name = name if column['quote'] else stored.lowered[name | lower] -%}
            {%- if (stored.columns[stored_name] or '') != column['description'] -%}
                {%- do statements.append(
                    'comment on column ' ~ relation ~ '.' ~ adapter.quote(stored_name)
                    ~ ' is ' ~ postgres_escape_comment(column['description'])) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if statements -%}
            {%- do run_query(statements | join(';\n')) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#-
    The comments `relation` has now: `relation` (its own, none when unset), `columns` (column
    name -> comment or none, every column) and `lowered` (lower-case name -> column name).
-#}
{% macro stored_comments(relation) -%}
    {%- set query -%}
        select
            attributes.attname as column_name,
            col_description(classes.oid, attributes.attnum) as column_comment,
            obj_description(classes.oid, 'pg_class') as relation_comment
        from pg_catalog.pg_class as classes
        inner join pg_catalog.pg_namespace as namespaces
            on classes.relnamespace = namespaces.oid
        inner join pg_catalog.pg_attribute as attributes
            on
                classes.oid = attributes.attrelid
                and attributes.attnum > 0
                and not attributes.attisdropped
        where
            namespaces.nspname = '{{ relation.schema }}'
            and classes.relname = '{{ relation.identifier }}'
        order by attributes.attnum
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- set result = {'relation': none, 'columns': {}, 'lowered': {}} -%}
    {%- for row in rows -%}
        {%- do result.update({'relation': row[2]}) -%}
        {%- do result.columns.update({row[0]: row[1]}) -%}
        {%- do result.lowered.update({row[0] | lower: row[0]}) -%}
    {%- endfor -%}
    {{ return(result) }}
{%- endmacro %}
