{#-
    The few places where PostgreSQL and Spark SQL differ. Everything else in the models is
    plain SQL that both engines accept.
-#}

{#- A bounded character column: varchar(n) on PostgreSQL, string on Spark. -#}
{% macro as_varchar(expression, length) -%}
    {{ return(adapter.dispatch('as_varchar', 'condomanage')(expression, length)) }}
{%- endmacro %}

{% macro default__as_varchar(expression, length) -%}
    cast({{ expression }} as varchar({{ length }}))
{%- endmacro %}

{% macro spark__as_varchar(expression, length) -%}
    cast({{ expression }} as string)
{%- endmacro %}

{#- An unbounded character column: text on PostgreSQL, string on Spark. -#}
{% macro as_text(expression) -%}
    {{ return(adapter.dispatch('as_text', 'condomanage')(expression)) }}
{%- endmacro %}

{% macro default__as_text(expression) -%}
    cast({{ expression }} as text)
{%- endmacro %}

{% macro spark__as_text(expression) -%}
    cast({{ expression }} as string)
{%- endmacro %}

{#- A timestamp with time zone semantics: timestamptz on PostgreSQL, timestamp on Spark. -#}
{% macro as_load_timestamp(expression) -%}
    {{ return(adapter.dispatch('as_load_timestamp', 'condomanage')(expression)) }}
{%- endmacro %}

{% macro default__as_load_timestamp(expression) -%}
    cast({{ expression }} as timestamptz)
{%- endmacro %}

{% macro spark__as_load_timestamp(expression) -%}
    cast({{ expression }} as timestamp)
{%- endmacro %}

{#- Replace every run of whitespace (spaces, tabs, line breaks) with a single space. -#}
{% macro collapse_whitespace(expression) -%}
    {{ return(adapter.dispatch('collapse_whitespace', 'condomanage')(expression)) }}
{%- endmacro %}

{% macro default__collapse_whitespace(expression) -%}
    regexp_replace({{ expression }}, '\s+', ' ', 'g')
{%- endmacro %}

{% macro spark__collapse_whitespace(expression) -%}
    regexp_replace({{ expression }}, '\\s+', ' ')
{%- endmacro %}

{#- A timestamp expression moved back by a number of minutes. -#}
{% macro minutes_before(expression, minutes) -%}
    {{ return(adapter.dispatch('minutes_before', 'condomanage')(expression, minutes)) }}
{%- endmacro %}

{% macro default__minutes_before(expression, minutes) -%}
    ({{ expression }} - make_interval(mins => {{ minutes | int }}))
{%- endmacro %}

{% macro spark__minutes_before(expression, minutes) -%}
    ({{ expression }} - make_dt_interval(0, 0, {{ minutes | int }}, 0))
{%- endmacro %}

{#- The earliest load time the project can meet: the "no watermark yet" value. -#}
{% macro epoch_timestamp() -%}
    {{ return(adapter.dispatch('epoch_timestamp', 'condomanage')()) }}
{%- endmacro %}

{% macro default__epoch_timestamp() -%}
    cast('1970-01-01 00:00:00+00' as timestamptz)
{%- endmacro %}

{% macro spark__epoch_timestamp() -%}
    cast('1970-01-01 00:00:00' as timestamp)
{%- endmacro %}
