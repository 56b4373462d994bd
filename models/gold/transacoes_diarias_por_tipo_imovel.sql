{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='data_transacao',
        on_schema_change='fail',
        scope_marker_column='qtd_transacoes',
        post_hook=["{{ record_watermark() }}"],
        indexes=[{'columns': ['data_transacao', 'tipo_imovel'], 'unique': True}],
    )
}}

{%- set transacoes_state = change_set_state(ref('stg_transacoes')) %}
{%- set imoveis_state = change_set_state(ref('stg_imoveis')) %}
{#-
    The signed change set of silver transactions carries the property, not its type. A
    removed row was counted under the type its property had when this report was last
    built: the property's removed row in the change set of silver properties when that
    change set is from the same run, its current type when properties did not change since.
    Otherwise (or on the first build) the report is recomputed from silver.
-#}
{%- set by_delta = is_incremental() and transacoes_state == 'apply' and (
    imoveis_state == 'none' or (
        imoveis_state == 'apply'
        and change_sets_aligned(ref('stg_transacoes'), ref('stg_imoveis')))) %}

with

imoveis as (
    select
        imovel_id,
        tipo
    from {{ ref('stg_imoveis') }}
),

transacoes as (
    select
        imovel_id,
        data_transacao,
        valor_transacao
    from {{ ref('stg_transacoes') }}
),

{% if by_delta -%}
changes as (
    {{ change_set_rows(ref('stg_transacoes'), transacoes_state,
        ['imovel_id', 'data_transacao', 'valor_transacao']) | indent(4) }}
),

previous_types as (
    select
        changed_imoveis.imovel_id,
        changed_imoveis.tipo
    from (
        {{ change_set_rows(ref('stg_imoveis'), imoveis_state,
            ['imovel_id', 'tipo']) | indent(8) }}
    ) as changed_imoveis
    where changed_imoveis._sinal < 0
),

deltas as (
    select
        changes.data_transacao,
        case
            when changes._sinal < 0 then coalesce(previous_types.tipo, imoveis.tipo)
            else imoveis.tipo
        end as tipo_imovel,
        changes._sinal as qtd_transacoes,
        changes._sinal * changes.valor_transacao as valor_total
    from changes
    left join previous_types
        on
            changes._sinal < 0
            and changes.imovel_id = previous_types.imovel_id
    left join imoveis
        on changes.imovel_id = imoveis.imovel_id
),

changed_days as (
    select distinct data_transacao from deltas
),

previous_rows as (
    select
        previous.data_transacao,
        previous.tipo_imovel,
        previous.qtd_transacoes,
        previous.valor_total
    from {{ this }} as previous
    inner join changed_days
        on previous.data_transacao = changed_days.data_transacao
),

summed as (
    select
        data_transacao,
        tipo_imovel,
        sum(qtd_transacoes) as qtd_transacoes,
        sum(valor_total) as valor_total
    from (
        select * from previous_rows
        union all
        select * from deltas
    ) as parts
    group by data_transacao, tipo_imovel
),

daily as (
    select * from summed
    where qtd_transacoes > 0
),
{%- else -%}
typed_transactions as (
    select
        transacoes.data_transacao,
        imoveis.tipo as tipo_imovel,
        transacoes.valor_transacao
    from transacoes
    inner join imoveis
        on transacoes.imovel_id = imoveis.imovel_id
),

daily as (
    select
        data_transacao,
        tipo_imovel,
        count(*) as qtd_transacoes,
        sum(valor_transacao) as valor_total
    from typed_transactions
    group by data_transacao, tipo_imovel
),
{%- endif %}

per_day as (
    select
        cast(data_transacao as date) as data_transacao,
        {{ as_varchar('tipo_imovel', 50) }} as tipo_imovel,
        cast(qtd_transacoes as bigint) as qtd_transacoes,
        cast(valor_total as decimal(20, 2)) as valor_total,
        cast({{ half_up_average('valor_total', 'qtd_transacoes', 2) }} as decimal(15, 2))
            as valor_medio
    from daily
),
{%- if is_incremental() and not by_delta %}

-- Recomputed from all of silver: every day, old or new, is replaced.
changed_days as (
    select data_transacao from {{ this }}
    union
    select data_transacao from per_day
),
{%- endif %}

-- On an incremental run, a day with no transaction left loses its old rows.
final as (
    {{ replace_scope_batch('per_day', 'changed_days') }}
)

select * from final
