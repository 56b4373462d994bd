{#-
    The production targets (the `production_targets` var: postgres, spark, spark_thrift) own
    the lakehouse's schemas: a custom schema is used as is (`silver`, `gold`, `audit`) and
    nodes without one land in the target schema (silver).

    Any other target (a developer's `dev`, a CI run) is kept out of them on a shared server:
    its schemas are prefixed with its own target schema (`dbt_alice_silver`,
    `dbt_alice_gold`, dbt's usual convention), and a target schema that is itself one of the
    production schemas is refused, since dbt's internal state lives there.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set production = target.name in var('production_targets', ['postgres', 'spark', 'spark_thrift']) -%}
    {%- set reserved = ['bronze', 'bronze_loads', 'ops', 'silver', 'gold', 'audit'] -%}
    {%- if not production and target.schema | trim | lower in reserved -%}
        {{ exceptions.raise_compiler_error(
            "target '" ~ target.name ~ "' uses schema '" ~ target.schema ~ "', which belongs to"
            ~ " the production targets; give it a schema of its own (e.g. dbt_<your name>)") }}
    {%- endif -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- elif production -%}
        {{ custom_schema_name | trim }}
    {%- else -%}
        {{ target.schema | trim }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
