with

condominios as (
    select
        condominio_id,
        nome
    from {{ ref('stg_condominios') }}
),

imoveis as (
    select
        imovel_id,
        condominio_id
    from {{ ref('stg_imoveis') }}
),

transacoes_por_imovel as (
    select
        imovel_id,
        qtd_transacoes,
        valor_total
    from {{ ref('int_transacoes_por_imovel') }}
),

-- A transaction belongs to its property's condominium.
totals as (
    select
        imoveis.condominio_id,
        sum(transacoes_por_imovel.qtd_transacoes) as qtd_transacoes,
        sum(transacoes_por_imovel.valor_total) as valor_total
    from transacoes_por_imovel
    inner join imoveis
        on transacoes_por_imovel.imovel_id = imoveis.imovel_id
    group by imoveis.condominio_id
),

final as (
    select
        condominios.condominio_id,
        {{ as_varchar('condominios.nome', 255) }} as nome_condominio,
        cast(coalesce(totals.qtd_transacoes, 0) as bigint) as qtd_transacoes,
        cast(coalesce(totals.valor_total, 0) as decimal(20, 2)) as valor_total
    from condominios
    left join totals
        on condominios.condominio_id = totals.condominio_id
)

select * from final
