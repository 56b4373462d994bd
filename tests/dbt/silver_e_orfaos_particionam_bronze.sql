-- Reconciliation: for every entity, the silver rows plus the excluded rows are exactly the
-- deduplicated bronze ids, no more, no less. Returns the entities where that fails.

{% set entities = [
    ('condominios', 'condominio_id', 'stg_condominios'),
    ('imoveis', 'imovel_id', 'stg_imoveis'),
    ('moradores', 'morador_id', 'stg_moradores'),
    ('transacoes', 'transacao_id', 'stg_transacoes'),
] %}

with

{% for entity, id_column, model in entities %}
{{ entity }}_counts as (
    select
        '{{ entity }}' as entidade,
        (
            select count(distinct bronze_rows.{{ id_column }}) as ids
            from {{ source('bronze', entity) }} as bronze_rows
        ) as bronze_ids,
        (select count(*) as silver_count from {{ ref(model) }}) as silver_rows,
        (
            select count(*) as excluded_count
            from {{ ref('audit_orfaos') }} as orfaos
            where orfaos.entidade = '{{ entity }}'
        ) as excluded_rows
),
{% endfor %}

counts as (
    {% for entity, id_column, model in entities %}
    select * from {{ entity }}_counts
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    counts.entidade,
    counts.bronze_ids,
    counts.silver_rows,
    counts.excluded_rows
from counts
where counts.silver_rows + counts.excluded_rows != counts.bronze_ids
