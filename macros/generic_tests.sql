{#- Custom generic tests. Each returns the offending rows; documented in _macros.yml. -#}

{% test unique_combination_of_columns(model, combination_of_columns) %}
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{% test not_null_combination(model, columns) %}
    select *
    from {{ model }}
    where
        {% for column in columns -%}
        {{ column }} is null{% if not loop.last %} or {% endif %}
        {% endfor %}
{% endtest %}

{% test aggregate_matches(model, expression, compare_model, compare_expression) %}
    with

    measured as (
        select {{ expression }} as measured_value from {{ model }}
    ),

    expected as (
        select {{ compare_expression }} as expected_value from {{ compare_model }}
    )

    select
        measured.measured_value,
        expected.expected_value
    from measured
    cross join expected
    where
        not (
            measured.measured_value = expected.expected_value
            or (measured.measured_value is null and expected.expected_value is null)
        )
{% endtest %}

{% test is_clean_text(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where
        {{ column_name }} != trim({{ collapse_whitespace(column_name) }})
        or {{ column_name }} = ''
{% endtest %}

{% test is_trimmed(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} != trim({{ column_name }}) or {{ column_name }} = ''
{% endtest %}
