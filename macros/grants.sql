{#-
    Gold's `grants` (dbt_project.yml) are PostgreSQL grants to the BI role. Spark, in a local
    session or behind the Thrift server, has no SQL grants to manage here (its `show grants`
    does not even parse), so on the spark target they are skipped, with a line in the log.
-#}
{% macro spark__apply_grants(relation, grant_config, should_revoke=True) -%}
    {%- if grant_config -%}
        {{ log("grants skipped on the spark target for " ~ relation ~ ": " ~ grant_config) }}
    {%- endif -%}
{%- endmacro %}
