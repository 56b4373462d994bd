{#-
    The lakehouse has exactly three schemas: bronze (written by the loaders), silver and gold.
    dbt's default would prefix custom schemas with the target schema (`silver_gold`); here a
    custom schema is used as is, and nodes without one land in the target schema (silver).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
