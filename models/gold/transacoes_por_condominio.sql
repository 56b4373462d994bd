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

por_imovel as (
    select
        imovel_id,
        qtd_transacoes,
        valor_total
    from {{ ref('int_transacoes_por_imovel') }}
),

-- A transaction belongs to its property's condominium.
totais as (
    select
        imoveis.condominio_id,
        sum(por_imovel.qtd_transacoes) as qtd_transacoes,
        sum(por_imovel.valor_total) as valor_total
    from por_imovel
    inner join imoveis
        on por_imovel.imovel_id = imoveis.imovel_id
    group by imoveis.condominio_id
),

final as (
    select
        condominios.condominio_id,
        {{ as_varchar('condominios.nome', 255) }} as nome_condominio,
        cast(coalesce(totais.qtd_transacoes, 0) as bigint) as qtd_transacoes,
        cast(coalesce(totais.valor_total, 0) as decimal(20, 2)) as valor_total
    from condominios
    left join totais
        on condominios.condominio_id = totais.condominio_id
)

select * from final
