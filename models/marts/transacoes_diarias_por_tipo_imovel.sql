{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='data_transacao',
        on_schema_change='ignore',
        post_hook=["{{ record_watermark() }}"],
        indexes=[{'columns': ['data_transacao', 'tipo_imovel'], 'unique': True}],
    )
}}

{%- set transacoes_state = change_set_state(ref('stg_transacoes')) %}
{%- set by_delta = is_incremental() and transacoes_state != 'rebuild' %}

-- Incremental runs recompute only the days in the change set of silver transactions: the
-- day of every removed row (where a re-dated transaction used to be) and of every new one.

with

{% if by_delta -%}
changed_days as (
    select distinct alteracoes.data_transacao
    from (
        {{ change_set_rows(ref('stg_transacoes'), transacoes_state,
            ['data_transacao']) | indent(8) }}
    ) as alteracoes
),

{% endif -%}
transacoes as (
    select
        transacoes.data_transacao,
        imoveis.tipo as tipo_imovel,
        transacoes.valor_transacao
    from {{ ref('stg_transacoes') }} as transacoes
    inner join {{ ref('stg_imoveis') }} as imoveis
        on transacoes.imovel_id = imoveis.imovel_id
    {%- if by_delta %}
    where transacoes.data_transacao in (select changed_days.data_transacao from changed_days)
    {%- endif %}
),

diarias as (
    select
        data_transacao,
        tipo_imovel,
        count(*) as qtd_transacoes,
        sum(valor_transacao) as valor_total
    from transacoes
    group by data_transacao, tipo_imovel
),

final as (
    select
        cast(data_transacao as date) as data_transacao,
        {{ as_varchar('tipo_imovel', 50) }} as tipo_imovel,
        cast(qtd_transacoes as bigint) as qtd_transacoes,
        cast(valor_total as decimal(20, 2)) as valor_total,
        cast({{ half_up_average('valor_total', 'qtd_transacoes', 2) }} as decimal(15, 2))
            as valor_medio
    from diarias
){%- if is_incremental() and not by_delta %},

-- Recomputed from all of silver: every day, old or new, is replaced.
changed_days as (
    select data_transacao from {{ this }}
    union
    select data_transacao from final
)
{%- endif %}

{% if is_incremental() -%}
select
    final.*,
    false as _scope_only
from final

union all

-- One marker per affected day: its old rows go even when no transaction is left on it.
{{ scope_markers('data_transacao', 'changed_days',
    ['varchar(50)', 'bigint', 'decimal(20, 2)', 'decimal(15, 2)']) }}
{%- else -%}
select * from final
{%- endif %}
