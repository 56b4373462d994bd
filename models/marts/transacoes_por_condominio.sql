with

condominios as (
    select
        condominio_id,
        nome
    from {{ ref('stg_condominios') }}
),

totais as (
    select
        imoveis.condominio_id,
        count(*) as qtd_transacoes,
        sum(transacoes.valor_transacao) as valor_total
    from {{ ref('stg_transacoes') }} as transacoes
    inner join {{ ref('stg_imoveis') }} as imoveis
        on transacoes.imovel_id = imoveis.imovel_id
    group by imoveis.condominio_id
)

select
    condominios.condominio_id,
    {{ as_varchar('condominios.nome', 255) }} as nome_condominio,
    cast(coalesce(totais.qtd_transacoes, 0) as bigint) as qtd_transacoes,
    cast(coalesce(totais.valor_total, 0) as decimal(20, 2)) as valor_total
from condominios
left join totais
    on condominios.condominio_id = totais.condominio_id
