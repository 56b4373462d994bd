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
alteracoes as (
    {{ change_set_rows(ref('stg_transacoes'), transacoes_state,
        ['imovel_id', 'data_transacao', 'valor_transacao']) | indent(4) }}
),

tipos_anteriores as (
    select
        imoveis_alterados.imovel_id,
        imoveis_alterados.tipo
    from (
        {{ change_set_rows(ref('stg_imoveis'), imoveis_state,
            ['imovel_id', 'tipo']) | indent(8) }}
    ) as imoveis_alterados
    where imoveis_alterados._sinal < 0
),

variacao as (
    select
        alteracoes.data_transacao,
        case
            when alteracoes._sinal < 0 then coalesce(tipos_anteriores.tipo, imoveis.tipo)
            else imoveis.tipo
        end as tipo_imovel,
        alteracoes._sinal as qtd_transacoes,
        alteracoes._sinal * alteracoes.valor_transacao as valor_total
    from alteracoes
    left join tipos_anteriores
        on
            alteracoes._sinal < 0
            and alteracoes.imovel_id = tipos_anteriores.imovel_id
    left join imoveis
        on alteracoes.imovel_id = imoveis.imovel_id
),

changed_days as (
    select distinct data_transacao from variacao
),

anteriores as (
    select
        previous.data_transacao,
        previous.tipo_imovel,
        previous.qtd_transacoes,
        previous.valor_total
    from {{ this }} as previous
    inner join changed_days
        on previous.data_transacao = changed_days.data_transacao
),

somadas as (
    select
        data_transacao,
        tipo_imovel,
        sum(qtd_transacoes) as qtd_transacoes,
        sum(valor_total) as valor_total
    from (
        select * from anteriores
        union all
        select * from variacao
    ) as parcelas
    group by data_transacao, tipo_imovel
),

diarias as (
    select * from somadas
    where qtd_transacoes > 0
),
{%- else -%}
transacoes_tipadas as (
    select
        transacoes.data_transacao,
        imoveis.tipo as tipo_imovel,
        transacoes.valor_transacao
    from transacoes
    inner join imoveis
        on transacoes.imovel_id = imoveis.imovel_id
),

diarias as (
    select
        data_transacao,
        tipo_imovel,
        count(*) as qtd_transacoes,
        sum(valor_transacao) as valor_total
    from transacoes_tipadas
    group by data_transacao, tipo_imovel
),
{%- endif %}

por_dia as (
    select
        cast(data_transacao as date) as data_transacao,
        {{ as_varchar('tipo_imovel', 50) }} as tipo_imovel,
        cast(qtd_transacoes as bigint) as qtd_transacoes,
        cast(valor_total as decimal(20, 2)) as valor_total,
        cast({{ half_up_average('valor_total', 'qtd_transacoes', 2) }} as decimal(15, 2))
            as valor_medio
    from diarias
),
{%- if is_incremental() and not by_delta %}

-- Recomputed from all of silver: every day, old or new, is replaced.
changed_days as (
    select data_transacao from {{ this }}
    union
    select data_transacao from por_dia
),
{%- endif %}

-- On an incremental run, a day with no transaction left loses its old rows.
final as (
    {{ replace_scope_batch('por_dia', 'changed_days') }}
)

select * from final
